"""The delayed set: tasks that must wait longer than a Celery delivery may last.

A worker that meets a long wait (a 429's Retry-After, the rate limit, a retry
budget spent) hands the job to :func:`delay_job` and acknowledges its message;
intake calls :func:`release_due` each loop, which pushes the due ones back to
Celery. Never a Celery countdown or ETA: those sit unacknowledged in a worker
and come back as duplicates once the visibility timeout passes.

Members are ``j:<job payload>`` or ``c:<control payload>``, scored by their due
time in milliseconds of the Redis server's clock.
"""
from __future__ import annotations

import logging
from typing import Sequence

import redis

from podq.broker.queue.envelopes import dispatch_control, dispatch_jobs
from podq.broker.store import keys

from .scripts import register

log = logging.getLogger(__name__)

JOB = b"j:"
CONTROL = b"c:"
LEASE_MS = 30_000


def delay_job(client: redis.Redis, *, job_id: str, payload: bytes, delay: float, grace: float = 300.0) -> int:
    """Send a job payload back in ``delay`` seconds; returns how often the job was delayed.

    ``grace``: seconds after it is due before the job may count as orphaned (see
    :func:`podq.broker.store.ledger.Ledger.orphans`); the worker passes its visibility timeout.
    """
    script = register(client, "delay")
    return int(script(keys=[keys.DELAYED_ZSET, keys.job_key(job_id), keys.INFLIGHT_ZSET],
                      args=[JOB + payload, max(0, int(delay * 1000)), job_id, grace]))


def delay_control(client: redis.Redis, *, payload: bytes, delay: float) -> None:
    """Send a control record back to the workers in ``delay`` seconds."""
    register(client, "delay")(keys=[keys.DELAYED_ZSET, "", keys.INFLIGHT_ZSET],
                              args=[CONTROL + payload, max(0, int(delay * 1000)), "", 0])


def release_due(client: redis.Redis, now: float | None = None, *, per_message: int = 8,
                limit: int = 1000) -> int:
    """Push every due task back to Celery; returns how many were released.

    ``now`` (seconds since the epoch) is for tests; by default the server's clock
    decides. Safe to call from several intakes at once.
    """
    now_arg = "" if now is None else str(int(now * 1000))
    reply = register(client, "release")(keys=[keys.DELAYED_ZSET], args=[now_arg, limit, LEASE_MS])
    lease, members = reply[0], reply[1:]
    if not members:
        return 0
    jobs = [member[len(JOB):] for member in members if member.startswith(JOB)]
    controls = [member[len(CONTROL):] for member in members if member.startswith(CONTROL)]
    unknown = len(members) - len(jobs) - len(controls)
    if unknown:
        log.warning("delayed set: %d members of unknown kind dropped", unknown)
    dispatch_jobs(client, jobs, per_message=per_message)
    dispatch_control(client, controls)
    _forget(client, lease, members)
    log.info("released %d delayed jobs and %d control tasks", len(jobs), len(controls))
    return len(jobs) + len(controls)


def _forget(client: redis.Redis, lease: bytes, members: Sequence[bytes]) -> None:
    register(client, "released")(keys=[keys.DELAYED_ZSET], args=[lease, *members])


def pending_count(client: redis.Redis) -> int:
    """How many tasks wait in the delayed set."""
    return int(client.zcard(keys.DELAYED_ZSET))
