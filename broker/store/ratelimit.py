"""The cluster-wide pod-create rate limit: one token bucket in Redis for every worker.

:meth:`CreateRateLimit.reserve` takes a slot and says how long to wait for it, so
N workers together start at most ``rate × w + burst`` creates in any window of
``w`` seconds, without polling. ``lua/ratelimit.lua`` holds the bucket.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from podq.broker.store import keys

from .scripts import scripts_for


@dataclass(frozen=True)
class Reservation:
    """``granted``: act after ``wait`` seconds. Refused: the next slot is ``wait`` seconds away.

    ``slot`` is that moment in epoch seconds by the bucket's clock (the Redis server's): what the
    limit guarantees is that slots, across every worker, keep to ``rate × w + burst``.
    """

    granted: bool
    wait: float
    slot: float


class CreateRateLimit:
    """Reservations on the shared bucket; ``rate <= 0`` turns the limit off."""

    def __init__(self, client: redis.Redis, *, rate: float, burst: int, key: str = keys.CREATE_RATE_KEY) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.key = key
        self._script = scripts_for(client).ratelimit if rate > 0 else None

    def reserve(self, *, max_wait: float) -> Reservation:
        """Take one slot no more than ``max_wait`` seconds away, or none at all."""
        if self._script is None:
            return Reservation(True, 0.0, time.time())
        granted, wait, slot = self._script(keys=[self.key],
                                           args=[repr(self.rate), self.burst, repr(max(0.0, max_wait))])
        return Reservation(bool(granted), float(wait), float(slot))
