"""Intake's gauges: the figures Redis holds (queue, in-flight, streams, dead letters, watcher leases),
read every few seconds into podq's metrics catalogue."""
from __future__ import annotations

import logging
import time

from podq.broker.store.connection import Client
from podq.broker.store.overview import Overview, overview
from podq.broker.store.ratelimit import REASONS
from podq.shared import metrics

log = logging.getLogger(__name__)


def export(figures: Overview) -> None:
    """Set every Redis-derived gauge from one overview."""
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
    for scope in figures.scopes:
        metrics.WATCHER_SCOPE_LEASED.labels(scope.scope).set(1 if scope.leader else 0)
    for cluster, budget in figures.budgets.items():
        metrics.CREATE_BUDGET.labels(cluster).set(budget.rate)
        metrics.CREATE_BUDGET_PEAK.labels(cluster).set(budget.peak)
        metrics.CREATE_BUDGET_PAUSE.labels(cluster).set(max(0.0, budget.pause_until - figures.at))
        for reason in REASONS:
            metrics.CREATE_BUDGET_REASON.labels(cluster, reason).set(1 if reason == budget.reason else 0)


class GaugeRefresher:
    """A periodic step of intake's loop: refresh the gauges at most every ``interval`` seconds."""

    def __init__(self, client: Client, *, interval: float = 2.0) -> None:
        self._client = client
        self._interval = interval
        self._next = 0.0

    def maybe_run(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval
        try:
            export(overview(self._client))
        except Exception as exc:  # noqa: BLE001 - stale gauges must not stop the delayed set or the trims
            log.warning("metrics: could not read the figures for intake's gauges: %s: %s", type(exc).__name__, exc)
            return False
        return True
