"""The Python producer API: put jobs on ``podq:jobs``."""
from __future__ import annotations

from typing import Iterable

from podq.broker.intake.admission import check_job
from podq.broker.store import keys, streams
from podq.broker.store.connection import Client
from podq.shared.errors import PodqError
from podq.shared.records import KubernetesJob
from podq.shared.settings import Settings


class SubmitError(PodqError):
    """A job intake would refuse; the message is the one intake would give."""


def submit(client: Client, job: KubernetesJob, *, settings: Settings | None = None) -> str:
    """Add ``job`` to ``podq:jobs``; returns the stream entry id.

    With ``settings`` (intake's), the job is first checked as intake would check it.
    """
    return submit_many(client, [job], settings=settings)[0]


def submit_many(client: Client, jobs: Iterable[KubernetesJob], *,
                settings: Settings | None = None) -> list[str]:
    """Add several jobs in one round trip."""
    jobs = list(jobs)
    if settings is not None:
        for job in jobs:
            reason = check_job(job, settings)
            if reason:
                raise SubmitError(f"job {job.job_id} ({job.key}): {reason}")
    return streams.add_records(client, keys.JOBS_STREAM, [job.encode() for job in jobs])
