"""The gauges read from Redis (queue, in-flight, streams, dead letters, watcher leadership, live processes,
the ledger's exact totals), refreshed every few seconds by intake and by every watcher replica, so the
figures alerts depend on stay published while either kind of process is down. Each refresher also
renews its process's own liveness record (:class:`.liveness.Presence`).
"""
from __future__ import annotations

import logging
import time

from podq.shared import metrics
from podq.shared.states import TERMINAL_STATES

from . import counters
from .connection import Client
from .liveness import Presence
from .overview import Overview, overview
from .ratelimit import REASONS

log = logging.getLogger(__name__)

# How often the gauges are read and the liveness record renewed; a record lapses after LIVENESS_TTL.
INTERVAL = 2.0
LIVENESS_TTL = 10.0


def export(figures: Overview, totals: dict[str, int]) -> None:
    """Set every Redis-derived gauge from one overview and the running totals."""
    metrics.CELERY_QUEUE_MESSAGES.set(figures.queue_messages)
    metrics.JOBS_IN_FLIGHT.set(figures.in_flight)
    metrics.DELAYED_JOBS.set(figures.delayed)
    metrics.JOBS_STREAM_LENGTH.set(figures.jobs.length)
    metrics.JOBS_STREAM_LAG.set(figures.jobs_lag)
    metrics.JOBS_STREAM_PENDING.set(figures.jobs_pending)
    metrics.DEAD_LETTERS.set(figures.dead)
    for item in figures.schedulers:
        metrics.RESULTS_STREAM_LENGTH.labels(item.scheduler).set(item.length)
        metrics.RESULTS_PENDING.labels(item.scheduler).set(item.pending)
        metrics.RESULTS_LAG.labels(item.scheduler).set(item.lag)
        metrics.RESULTS_OLDEST_PENDING.labels(item.scheduler).set(item.oldest_pending_age or 0.0)
        metrics.RESULTS_DEAD_LETTERS.labels(item.scheduler).set(item.dead)
        metrics.RESULTS_DELIVERED.labels(item.scheduler).set(item.delivered)
    for scope in figures.scopes:
        metrics.WATCHER_SCOPE_LEASED.labels(scope.scope).set(1 if scope.leader else 0)
    for cluster, lines in figures.waiting.items():
        for scheduler, count in lines.items():
            metrics.JOBS_WAITING.labels(cluster, scheduler).set(count)
    for cluster, budget in figures.budgets.items():
        metrics.CREATE_BUDGET.labels(cluster).set(budget.rate)
        metrics.CREATE_BUDGET_PEAK.labels(cluster).set(budget.peak)
        metrics.CREATE_BUDGET_PAUSE.labels(cluster).set(max(0.0, budget.pause_until - figures.at))
        for reason in REASONS:
            metrics.CREATE_BUDGET_REASON.labels(cluster, reason).set(1 if reason == budget.reason else 0)
    for role, instances in figures.live.items():
        metrics.LIVE_PROCESSES.labels(role).set(len(instances))
    for name in (counters.ACCEPTED, counters.DISPATCHED, counters.CREATED):
        metrics.LEDGER_EVENTS.labels(name).set(totals.get(name, 0))
    for state in TERMINAL_STATES:
        metrics.LEDGER_EVENTS.labels(state.value).set(totals.get(counters.ended(state), 0))


class GaugeRefresher:
    """A periodic step: renew this process's liveness record, then refresh the gauges, at most every
    ``interval`` seconds."""

    def __init__(self, client: Client, *, presence: Presence | None = None, interval: float = INTERVAL) -> None:
        self._client = client
        self._presence = presence
        self._interval = interval
        self._next = 0.0

    def maybe_run(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval
        try:
            if self._presence is not None:
                self._presence.renew()
            export(overview(self._client), counters.totals(self._client))
        except Exception as exc:  # noqa: BLE001 - stale gauges must not stop the loop that refreshes them
            log.warning("metrics: could not read the figures for the gauges: %s: %s", type(exc).__name__, exc)
            return False
        return True

    def leave(self) -> None:
        """Remove the liveness record (a clean shutdown)."""
        if self._presence is not None:
            try:
                self._presence.leave()
            except Exception as exc:  # noqa: BLE001 - it lapses on its own
                log.warning("could not remove the liveness record of %s: %s", self._presence.instance, exc)
