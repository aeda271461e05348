"""podq.broker.client: the public API for producers and schedulers."""
