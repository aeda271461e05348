"""podq.broker.client: the producer, scheduler and operator verbs; the package root (``podq``) re-exports
the public ones (docs/api.md), and callers import them from there."""
