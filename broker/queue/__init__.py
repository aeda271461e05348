"""podq.broker.queue: the Celery wiring (app configuration, protocol-2 envelopes, task names)."""
