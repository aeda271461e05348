"""What `podq status` shows: the whole system read from Redis alone (no cluster access).

A :class:`Snapshot` is one reading: the store's overview (queue, in-flight, delayed, streams,
watcher leadership, recent dead letters, the processes alive by their own liveness records), the
running totals (exact: each counted by the ledger script that records the fact), and the workers that
answered Celery's own ping. Rates come from two readings: :func:`rates` divides the totals' growth
by the time between them.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

from podq.broker.store import counters
from podq.broker.store.overview import Overview, overview


@dataclasses.dataclass(frozen=True, kw_only=True)
class Snapshot:
    overview: Overview
    totals: dict[str, int]
    workers: tuple[str, ...]
    """Celery node names that answered the ping."""
    taken: float
    """time.monotonic() of the reading."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rates:
    dispatched: float
    created: float
    """Per second, between two snapshots."""


def read(client, *, ping) -> Snapshot:
    """One reading; ``ping()`` returns the names of the Celery workers that answered."""
    return Snapshot(overview=overview(client), totals=counters.totals(client), workers=tuple(sorted(ping())),
                    taken=time.monotonic())


def rates(before: Snapshot | None, after: Snapshot) -> Rates | None:
    if before is None or after.taken <= before.taken:
        return None
    elapsed = after.taken - before.taken

    def rate(field: str) -> float:
        return max(0, after.totals.get(field, 0) - before.totals.get(field, 0)) / elapsed
    return Rates(dispatched=rate(counters.DISPATCHED), created=rate(counters.CREATED))


def celery_ping(app, *, timeout: float = 1.0):
    """A ping function for :func:`read`: Celery's own broadcast ping through the broker."""
    def ping() -> list[str]:
        replies = app.control.ping(timeout=timeout) or []
        return [name for reply in replies for name in reply]
    return ping


def as_json(snapshot: Snapshot, rate: Rates | None) -> dict[str, Any]:
    """The snapshot as `podq status --json` prints it."""
    figures = snapshot.overview
    return {
        "at": figures.at,
        "queue": {"celery_messages": figures.queue_messages, "in_flight": figures.in_flight,
                  "delayed": figures.delayed},
        "jobs_stream": {"length": figures.jobs.length, "lag": figures.jobs_lag, "pending": figures.jobs_pending},
        "rates": dataclasses.asdict(rate) if rate else None,
        "totals": {"accepted": snapshot.totals.get(counters.ACCEPTED, 0),
                   "dispatched": snapshot.totals.get(counters.DISPATCHED, 0),
                   "created": snapshot.totals.get(counters.CREATED, 0),
                   "ended": counters.ended_totals(snapshot.totals)},
        "budgets": {cluster: {"rate": budget.rate, "reason": budget.reason, "peak": budget.peak,
                              "pause_left": max(0.0, budget.pause_until - figures.at),
                              "latency": budget.latency, "base_latency": budget.base_latency}
                    for cluster, budget in figures.budgets.items()},
        "waiting": figures.waiting,
        "schedulers": [dataclasses.asdict(item) for item in figures.schedulers],
        "watchers": [dataclasses.asdict(item) for item in figures.scopes],
        "workers": list(snapshot.workers),
        "live": {role: list(instances) for role, instances in figures.live.items()},
        "dead_letters": {"count": figures.dead, "recent": [dataclasses.asdict(item) for item in figures.recent_dead]},
    }
