"""When jobs were submitted, read from their ledger entries (for the submit → running/terminal latencies)."""
from __future__ import annotations

from typing import Sequence

import redis

from .ledger import Ledger


class Submissions:
    """Reads when jobs were submitted."""

    def __init__(self, client: redis.Redis) -> None:
        self._ledger = Ledger(client)

    def submitted_at(self, job_ids: Sequence[str]) -> dict[str, float]:
        """Each job's ``submitted_at`` (producer's clock) where its ledger entry still holds the record."""
        if not job_ids:
            return {}
        entries = self._ledger.entries(job_ids, fields=("job",))
        return {job_id: entry.job.submitted_at for job_id, entry in entries.items()
                if entry.job is not None and entry.job.submitted_at}

