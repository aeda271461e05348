"""The delayed set: tasks that must wait longer than a Celery delivery may last.

A worker that meets a long wait (a 429's Retry-After, the rate limit, a retry
budget spent) hands the job to :func:`delay_job` and acknowledges its message;
intake's housekeeping (:func:`podq.broker.intake.housekeeping.release_due`) takes
the due ones (:func:`take_due`), pushes them back to Celery, and then
:func:`forget`s them. Never a Celery countdown or ETA: those sit unacknowledged in
a worker and come back as duplicates once the visibility timeout passes.

Members are ``j:<job payload>`` or ``c:<control payload>``, scored by their due
time in milliseconds of the Redis server's clock.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis

from . import keys
from .scripts import scripts_for

log = logging.getLogger(__name__)

JOB = b"j:"
CONTROL = b"c:"
LEASE_MS = 30_000


@dataclass(frozen=True, kw_only=True)
class Due:
    """Members taken from the delayed set under one lease (see ``lua/release.lua``)."""

    lease: bytes
    members: list[bytes] = field(default_factory=list)
    cluster: str | None = None
    """The cluster whose delayed set they came from (None: the default)."""

    @property
    def jobs(self) -> list[bytes]:
        return [member[len(JOB):] for member in self.members if member.startswith(JOB)]

    @property
    def controls(self) -> list[bytes]:
        return [member[len(CONTROL):] for member in self.members if member.startswith(CONTROL)]


def delay_job(client: redis.Redis, *, job_id: str, payload: bytes, delay: float, grace: float = 300.0,
              cluster: str | None = None) -> int:
    """Send a job payload back in ``delay`` seconds; returns how often the job was delayed.

    ``grace``: seconds after it is due before the job may count as orphaned (see
    :func:`podq.broker.store.ledger.Ledger.orphans`); the worker passes its visibility timeout.
    """
    return int(scripts_for(client).delay(keys=[keys.delayed_key(cluster), keys.job_key(job_id),
                                               keys.inflight_key(cluster)],
                                         args=[JOB + payload, max(0, int(delay * 1000)), job_id, grace]))


def delay_control(client: redis.Redis, *, payload: bytes, delay: float, cluster: str | None = None) -> None:
    """Send a control record back to the workers in ``delay`` seconds."""
    scripts_for(client).delay(keys=[keys.delayed_key(cluster)], args=[CONTROL + payload, max(0, int(delay * 1000)), "", 0])


def take_due(client: redis.Redis, now: float | None = None, *, limit: int = 1000,
             cluster: str | None = None) -> Due:
    """Lease the due members to this caller (safe from several intakes at once).

    ``now`` (seconds since the epoch) is for tests; by default the server's clock decides.
    Members the caller does not :func:`forget` are due again when the lease ends.
    """
    now_arg = "" if now is None else str(int(now * 1000))
    reply = scripts_for(client).release(keys=[keys.delayed_key(cluster)], args=[now_arg, limit, LEASE_MS])
    due = Due(lease=reply[0], members=list(reply[1:]), cluster=cluster)
    unknown = len(due.members) - len(due.jobs) - len(due.controls)
    if unknown:
        log.warning("delayed set: %d members of unknown kind dropped", unknown)
    return due


def forget(client: redis.Redis, due: Due) -> None:
    """Drop members that were pushed back to Celery (unless they were delayed again meanwhile)."""
    if due.members:
        scripts_for(client).released(keys=[keys.delayed_key(due.cluster)], args=[due.lease, *due.members])
