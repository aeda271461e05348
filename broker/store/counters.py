"""Running totals kept in Redis (fields of ``podq:metrics``), so `podq status` can show rates from Redis alone.

Prometheus counters live in each process and die with it; these are the cluster-wide totals
behind the status view's dispatch and create rates. One HINCRBY per batch, never per job.
"""
from __future__ import annotations

import redis

from . import keys

DISPATCHED = "dispatched"
CREATED = "created"


def add(client: redis.Redis, field: str, amount: int) -> None:
    if amount:
        client.hincrby(keys.METRICS_KEY, field, amount)


def totals(client: redis.Redis) -> dict[str, int]:
    """Every running total (the trim counters too), by field name."""
    return {name.decode(): int(value) for name, value in client.hgetall(keys.METRICS_KEY).items()}
