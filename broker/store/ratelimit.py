"""A cluster's shared create budget in Redis: reservations for every worker, and the controller's state.

One hash per cluster (:func:`podq.broker.store.keys.create_budget_key`) holds both:

* the reservations' clock (``lua/ratelimit.lua``): :meth:`CreateBudget.reserve` takes a slot and
  says how long to wait for it, so N workers together start at most ``rate × w + burst`` creates
  in any window of ``w`` seconds (at the rate of that moment), none before a shared pause ends,
  without polling;
* the controller's state (:class:`BudgetState`): the rate the API server's answers led to, why,
  and the pause a ``Retry-After`` asked for. The workers' controller
  (:mod:`podq.workers.budget`) reads it with :meth:`CreateBudget.read` and writes its next state
  with :meth:`CreateBudget.write`, a compare-and-set on ``version`` (``lua/budget.lua``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import redis

from podq.shared.errors import DecodeError

from . import keys
from .scripts import scripts_for


# Why a budget's rate is what it is: its state's ``reason`` (set by podq.workers.budget), shown by
# `podq status` and the podq_create_budget_reason gauge. The last three are push-backs (cuts).
REASONS = ("start", "slow start", "recovering", "at peak", "probing", "ceiling", "idle",
           "throttled", "server errors", "latency")
PUSH_BACKS = REASONS[-3:]


@dataclass(frozen=True)
class Reservation:
    """``granted``: act after ``wait`` seconds. Refused: the next slot is ``wait`` seconds away.

    ``slot`` is that moment in epoch seconds by the budget's clock (the Redis server's): what the
    budget guarantees is that slots, across every worker, keep to ``rate × w + burst``.
    ``rate``: the budget's rate when the slot was taken (creates/s; 0 when there is no budget).
    """

    granted: bool
    wait: float
    slot: float
    rate: float = 0.0


@dataclass(frozen=True, kw_only=True)
class BudgetState:
    """What a cluster's create budget holds, as the controller reads and writes it.

    Times are the Redis server's epoch seconds. ``version`` 0: nothing written yet.
    """

    rate: float
    """Creates per second the budget hands out now."""
    reason: str = "start"
    """Why the rate is what it is (one of :data:`REASONS`)."""
    peak: float = 0.0
    """The rate the API server last accepted when it pushed back (0: it never has)."""
    epoch_at: float = 0.0
    """When the rate's current growth began (a cut, or demand coming back)."""
    epoch_rate: float = 0.0
    """The rate that growth began from."""
    cut_at: float = 0.0
    """When the rate was last cut."""
    pause_until: float = 0.0
    """No create starts before this: the longest Retry-After any worker was given, shared by all."""
    base_latency: float = 0.0
    """The create latency of an unloaded API server as seen lately (s; 0: not measured yet)."""
    latency: float = 0.0
    """Create latency, smoothed (s)."""
    delivered: float = 0.0
    """Creates the API server answered, as the workers reported them (a running count)."""
    sampled_at: float = 0.0
    """When the current measurement of the delivery rate began ..."""
    sampled: float = 0.0
    """... and ``delivered`` then."""
    delivery_rate: float = 0.0
    """Creates per second the API server answered over the last measurement (about a second)."""
    limited_at: float = 0.0
    """The last time a reservation had to wait: demand met the budget (written by the reservations)."""
    version: int = 0

    CONTROLLED = ("rate", "reason", "peak", "epoch_at", "epoch_rate", "cut_at", "pause_until", "base_latency",
                  "latency", "delivered", "sampled_at", "sampled", "delivery_rate")
    """The fields the controller writes (the rest belong to the reservations or the compare-and-set)."""

    @classmethod
    def decode(cls, fields: Mapping[bytes | str, bytes], *, start: float) -> "BudgetState":
        """Read a budget hash; an empty one is the state of a budget at ``start`` creates/s."""
        raw = {(name.decode() if isinstance(name, bytes) else name): value.decode() if isinstance(value, bytes)
               else value for name, value in fields.items()}

        def number(name: str, default: float = 0.0) -> float:
            value = raw.get(name)
            if value is None or value == "":
                return default
            try:
                return float(value)
            except ValueError:
                raise DecodeError(f"create budget: field {name!r} is {value!r}, not a number") from None

        return cls(rate=number("rate", start), reason=raw.get("reason") or "start", peak=number("peak"),
                   epoch_at=number("epoch_at"), epoch_rate=number("epoch_rate"), cut_at=number("cut_at"),
                   pause_until=number("pause_until"), base_latency=number("base_latency"),
                   latency=number("latency"), delivered=number("delivered"), sampled_at=number("sampled_at"),
                   sampled=number("sampled"), delivery_rate=number("delivery_rate"),
                   limited_at=number("limited_at"), version=int(number("version")))

    def encode(self) -> list[str]:
        """The controller's fields as field/value pairs for :meth:`CreateBudget.write`."""
        pairs: list[str] = []
        for name in self.CONTROLLED:
            value = getattr(self, name)
            pairs += [name, value if isinstance(value, str) else f"{value:.6f}"]
        return pairs


class CreateBudget:
    """One cluster's create budget; ``ceiling <= 0`` turns it off (no limit, nothing adapts).

    ``start``: the rate of a budget nothing has moved yet (never above ``ceiling``).
    """

    def __init__(self, client: redis.Redis, *, cluster: str, ceiling: float, start: float, burst: int) -> None:
        self.cluster = cluster
        self.ceiling = ceiling
        self.start = min(start, ceiling) if ceiling > 0 else start
        self.burst = max(1, burst)
        self.key = keys.create_budget_key(cluster)
        self._client = client
        self._scripts = scripts_for(client) if ceiling > 0 else None

    @property
    def enabled(self) -> bool:
        return self._scripts is not None

    def reserve(self, *, max_wait: float) -> Reservation:
        """Take one slot no more than ``max_wait`` seconds away, or none at all."""
        if self._scripts is None:
            return Reservation(True, 0.0, time.time())
        granted, wait, slot, rate = self._scripts.ratelimit(
            keys=[self.key], args=[repr(self.start), self.burst, repr(max(0.0, max_wait))])
        return Reservation(bool(granted), float(wait), float(slot), float(rate))

    def read(self) -> tuple[BudgetState, float]:
        """The budget's state and the server's clock now (one round trip)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self.key)
        pipe.time()
        fields, (seconds, micros) = pipe.execute()
        return BudgetState.decode(fields, start=self.start), seconds + micros / 1e6

    def write(self, read: BudgetState, new: BudgetState) -> bool:
        """Store ``new`` if the budget is still at ``read``'s version; False when another worker wrote first."""
        assert self._scripts is not None, "a budget that is off has no state to write"
        return bool(self._scripts.budget(keys=[self.key, keys.CLUSTERS_SET],
                                         args=[read.version, self.cluster, *new.encode()]))


def budget_states(client: redis.Redis, *, start: float = 0.0) -> dict[str, BudgetState]:
    """Every cluster's budget state (for `podq status` and the gauges), by cluster name."""
    clusters = sorted(name.decode() for name in client.smembers(keys.CLUSTERS_SET))
    if not clusters:
        return {}
    pipe = client.pipeline(transaction=False)
    for cluster in clusters:
        pipe.hgetall(keys.create_budget_key(cluster))
    return {cluster: BudgetState.decode(fields, start=start) for cluster, fields in zip(clusters, pipe.execute())
            if fields}

