"""podq.broker.intake: the intake service (admission, ledger accept, dispatch to Celery)."""
