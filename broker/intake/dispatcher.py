"""Intake's dispatcher: jobs wait in fair, prioritised lines while the cluster's create budget is full.

Intake asks :meth:`Dispatcher.direct` for each batch it admits: while nothing waits and the
budget has room for the batch, the jobs go to the Celery queue at once (the path of a cell below
its API server's limit, no cost added). Otherwise they join their schedulers' waiting lines
(:mod:`podq.broker.store.waiting`), and :meth:`Dispatcher.step`, intake's ``intake-dispatch``
loop, releases them as the budget makes room: it keeps :func:`.shares.window` jobs dispatched
ahead of the workers and hands out the room by weighted fair share between the schedulers
(:func:`.shares.plan`), each line in priority order.

Off (every job straight to the Celery queue, first come first served) when
``PODQ_INTAKE_FAIR_SHARE`` is false or the cluster has no budget (``PODQ_WORKER_CREATE_RATE=0``).
"""
from __future__ import annotations

import logging
from typing import Sequence

from podq.broker.queue.envelopes import dispatch_jobs
from podq.broker.store import keys
from podq.broker.store.connection import Client
from podq.broker.store.ratelimit import CreateBudget
from podq.broker.store.waiting import WaitingLines
from podq.shared import clusters, metrics
from podq.shared.records import KubernetesJob
from podq.shared.settings import Settings

from .shares import Table, plan, window

log = logging.getLogger(__name__)

# The dispatch loop's rest when it found nothing to release (seconds).
IDLE_WAIT = 0.01


class Dispatcher:
    """One cluster's waiting lines and their release; ``settings`` are that cluster's
    (:func:`podq.shared.clusters.settings_for`), ``queue`` its Celery queue."""

    def __init__(self, *, client: Client, settings: Settings, queue: str = keys.CELERY_QUEUE) -> None:
        intake, worker = settings.intake, settings.worker
        self.client = client
        self.settings = settings
        self.queue = queue
        self.weights = Table.parse(intake.scheduler_weights, setting="PODQ_INTAKE_SCHEDULER_WEIGHTS",
                                   default=1.0, minimum=0.001)
        self.caps = Table.parse(intake.scheduler_max_in_flight, setting="PODQ_INTAKE_SCHEDULER_MAX_IN_FLIGHT",
                                default=None, minimum=1)
        self.budget = CreateBudget(client, cluster=settings.kube.cluster, ceiling=worker.create_rate,
                                   start=worker.create_rate_start, burst=worker.create_burst)
        self.lines = WaitingLines(client, cluster=settings.kube.cluster,
                                  recorded=clusters.canonical(settings, settings.kube.cluster))
        self.enabled = intake.fair_share and self.budget.enabled

    def window(self) -> int:
        """Jobs to keep dispatched ahead of the workers, from the budget's rate and the API server's
        unloaded create latency (its base: a queue at the server must not widen the window)."""
        state, _ = self.budget.read()
        return window(rate=state.rate, latency=state.base_latency, ahead=self.settings.intake.dispatch_ahead,
                      floor=self.settings.intake.dispatch_ahead_min)

    def direct(self, jobs: Sequence[KubernetesJob]) -> bool:
        """True when ``jobs`` may go to the Celery queue at once: nothing waits, no cap applies to
        them, and the budget has room for all of them."""
        if not self.enabled:
            return True
        if not self.caps.empty and any(self.caps.get(job.scheduler_id) is not None for job in jobs):
            return False
        if self.lines.any_waiting():
            return False
        return self.lines.dispatched_ahead() + len(jobs) <= self.window()

    def hold(self, jobs: Sequence[KubernetesJob]) -> int:
        """Put ``jobs`` in their lines; returns how many wait now (the rest had moved on meanwhile)."""
        waiting = sum(self.lines.add(jobs))
        metrics.JOBS_WAITED.inc(waiting)
        return waiting

    def step(self) -> int:
        """Release what the budget has room for; returns how many jobs were dispatched (0: rest)."""
        if not self.enabled or not self.lines.any_waiting():
            return 0
        lines = self.lines.read(in_flight_of=lambda name: self.caps.get(name) is not None)
        window = self.window()
        room = window - lines.dispatched
        if room <= 0:
            return 0
        counts = plan(lines.lines, room=room, weights=self.weights, caps=self.caps)
        if not counts:
            return 0
        records = self.lines.take(counts, weights={name: self.weights.get(name) or 1.0 for name in counts},
                                  orphaned_after=self.settings.intake.redispatch_after)
        if records:
            # A quarter of the window per message: a message holds its worker thread until its last
            # job is created (and its jobs count as dispatched until then), so the window holds four
            # messages, enough to keep the budget busy without many worker threads.
            dispatch_jobs(self.client, records, queue=self.queue,
                          per_message=max(1, min(self.settings.intake.jobs_per_message, -(-window // 4))))
            metrics.JOBS_DISPATCHED.inc(len(records))
            log.debug("released %d waiting jobs (%s)", len(records), counts)
        return len(records)
