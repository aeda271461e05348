"""Intake's periodic chores, one named loop beside the consumer loop.

* the delayed set: tasks whose wait is over go back to Celery (:func:`release_due`);
* orphaned jobs: dispatched jobs whose message vanished (a Redis crash between kombu's
  two writes) are pushed again once nobody holds them (``lua/orphans.lua``);
* trimming: every stream held below what its groups still need (:mod:`podq.broker.store.trim`);
* the gauges read from Redis, and this intake's liveness record (:mod:`podq.broker.store.gauges`).

Safe to run in several intakes at once.
"""
from __future__ import annotations

import logging
import time

from podq.broker.control.sender import ControlSender
from podq.broker.queue.envelopes import dispatch_routed
from podq.broker.store import delayed
from podq.broker.store.connection import Client
from podq.broker.store.gauges import LIVENESS_TTL, GaugeRefresher
from podq.broker.store.ledger import Ledger
from podq.broker.store.liveness import Presence
from podq.broker.store.trim import Trimmer
from podq.shared import metrics
from podq.shared.clusters import as_recorded
from podq.shared.records import KubernetesJob
from podq.shared.settings import Settings

log = logging.getLogger(__name__)

# How long the loop waits between passes that found nothing to do.
IDLE_WAIT = 0.2


def release_due(client: Client, now: float | None = None, *, per_message: int = 8, limit: int = 1000,
                clusters: tuple[str | None, ...] = (None,)) -> int:
    """Push every due task of the delayed set back to Celery, each to its cluster's queue; returns how
    many were released.

    ``now`` (seconds since the epoch) is for tests; by default the server's clock decides.
    ``clusters``: the cell's clusters as records hold them (an adoption goes to each).
    """
    released = 0
    for cluster in clusters:   # each cluster's own delayed set
        due = delayed.take_due(client, now, limit=limit, cluster=cluster)
        if not due.members:
            continue
        jobs, controls = due.jobs, due.controls
        dispatch_routed(client, routed(jobs), per_message=per_message)
        ControlSender(client, clusters=clusters).send_encoded(controls)
        delayed.forget(client, due)
        log.info("released %d delayed jobs and %d control tasks of cluster %s", len(jobs), len(controls),
                 cluster or "(default)")
        released += len(jobs) + len(controls)
    return released


def routed(records: list[bytes]) -> list[tuple[str | None, bytes]]:
    """Job records (as the ledger keeps them) with the cluster each was routed to."""
    return [(KubernetesJob.decode(record).cluster, record) for record in records]


class Housekeeping:
    """One pass of every chore that is due; :meth:`step` is the loop's body."""

    def __init__(self, *, client: Client, settings: Settings, instance: str | None = None) -> None:
        self.client = client
        self.settings = settings
        self.ledgers = [Ledger(client, cluster=cluster) for cluster in as_recorded(settings)]
        self.trimmer = Trimmer(client, settings.trim)
        # The gauges, and (given the intake's ``instance``) its liveness record for status and the alerts.
        presence = Presence(client, role="intake", instance=instance, ttl=LIVENESS_TTL) if instance else None
        self.gauges = GaugeRefresher(client, presence=presence)
        self._next_orphan_sweep = 0.0

    def step(self) -> int:
        """Do what is due; returns how many tasks it pushed (0: the loop may rest)."""
        released = release_due(self.client, per_message=self.settings.intake.jobs_per_message,
                               clusters=as_recorded(self.settings))
        pushed = self.redispatch_orphans()
        self.trimmer.maybe_run()
        self.gauges.maybe_run()
        return released + pushed

    def redispatch_orphans(self, *, force: bool = False) -> int:
        """Push again the jobs that wait for a pod with no live delivery; returns how many.

        Checked a few times per ``redispatch_after``; see ``lua/orphans.lua``.
        """
        after = self.settings.intake.redispatch_after
        if not force and time.monotonic() < self._next_orphan_sweep:
            return 0
        self._next_orphan_sweep = time.monotonic() + max(0.5, after / 3)
        records = [record for ledger in self.ledgers
                   for record in ledger.orphans(limit=self.settings.intake.batch_size, again_after=after)]
        if records:
            log.warning("%d dispatched jobs had no live delivery (a message lost with Redis?); "
                        "pushing them again", len(records))
            dispatch_routed(self.client, routed(records), per_message=self.settings.intake.jobs_per_message)
            metrics.JOBS_REDISPATCHED.inc(len(records))
        return len(records)
