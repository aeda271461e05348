"""The Python producer API: put jobs and control records on podq's streams."""
from __future__ import annotations

import time
from typing import Iterable

import redis

from podq.shared import keys
from podq.shared.errors import PodqError
from podq.shared.records import ControlRecord, KubernetesJob
from podq.shared.settings import Settings
from podq.shared.states import ControlOp

from .admission import check_job


class SubmitError(PodqError):
    """A job intake would refuse; the message is the one intake would give."""


def submit(client: redis.Redis, job: KubernetesJob, *, settings: Settings | None = None) -> str:
    """Add ``job`` to ``podq:jobs``; returns the stream entry id.

    With ``settings`` (intake's), the job is first checked as intake would check it.
    """
    return submit_many(client, [job], settings=settings)[0]


def submit_many(client: redis.Redis, jobs: Iterable[KubernetesJob], *,
                settings: Settings | None = None) -> list[str]:
    """Add several jobs in one round trip."""
    jobs = list(jobs)
    if settings is not None:
        for job in jobs:
            reason = check_job(job, settings)
            if reason:
                raise SubmitError(f"job {job.job_id} ({job.key}): {reason}")
    pipe = client.pipeline(transaction=False)
    for job in jobs:
        pipe.xadd(keys.JOBS_STREAM, {keys.RECORD_FIELD: job.encode()})
    return [entry.decode() for entry in pipe.execute()]


def send_control(client: redis.Redis, record: ControlRecord) -> str:
    """Add a control record to ``podq:control``; returns the stream entry id."""
    return client.xadd(keys.CONTROL_STREAM, {keys.RECORD_FIELD: record.encode()}).decode()


def revoke(client: redis.Redis, *, job_id: str, scheduler_id: str, reason: str | None = None) -> str:
    """Ask podq to revoke a job (no pod if none exists yet; otherwise label and delete it)."""
    return send_control(client, ControlRecord(op=ControlOp.REVOKE, job_id=job_id, scheduler_id=scheduler_id,
                                              reason=reason, requested_at=time.time()))
