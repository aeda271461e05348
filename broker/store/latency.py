"""When jobs were submitted, read from their ledger entries (for the submit → running/terminal latencies)."""
from __future__ import annotations

from typing import Sequence

import redis

from podq.shared.errors import DecodeError
from podq.shared.records import KubernetesJob

from . import keys


class Submissions:
    """Reads when jobs were submitted."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def submitted_at(self, job_ids: Sequence[str]) -> dict[str, float]:
        return submitted_at(self._client, job_ids)


def submitted_at(client: redis.Redis, job_ids: Sequence[str]) -> dict[str, float]:
    """Each job's ``submitted_at`` (producer's clock) where its ledger entry still holds the record."""
    if not job_ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(keys.job_key(job_id), "job")
    found = {}
    for job_id, record in zip(job_ids, pipe.execute()):
        if not record:
            continue
        try:
            when = KubernetesJob.decode(record).submitted_at
        except DecodeError:
            continue
        if when:
            found[job_id] = when
    return found
