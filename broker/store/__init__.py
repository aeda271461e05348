"""podq.broker.store: the Redis data model; the only code that issues Redis commands."""
