"""The one way podq's own components hand control records to the workers.

Intake (records admitted from ``podq:control``), the watcher (completions, and
deletes after a pending deadline) and the delayed set's release all send through
:class:`ControlSender`: ``podq.control`` Celery messages, pushed in one LPUSH per
Celery queue. A record about a job goes to the queue of the job's cluster (as the
ledger records it), where the workers that reach that cluster take it; an adoption,
which is about a scheduler's jobs on every cluster, goes to every cluster's queue.
Producers do not use it; they add records to ``podq:control``
(:mod:`podq.broker.client.control`), which intake checks first.
"""
from __future__ import annotations

from typing import Sequence

from podq.broker.queue.envelopes import CONTROL_TASK, messages_for
from podq.broker.store import keys, tasks
from podq.broker.store.connection import Client
from podq.broker.store.ledger import Ledger
from podq.shared.records import ControlRecord

# Completions travel several to a Celery message: they come in bursts, one per finished job.
COMPLETIONS_PER_MESSAGE = 8


class ControlSender:
    def __init__(self, client: Client, *, clusters: Sequence[str | None] = (None,)) -> None:
        """``clusters``: every cluster of the cell as records hold them (None: the default), for adoptions."""
        self._client = client
        self._ledger = Ledger(client)
        self._clusters = tuple(clusters)

    def send(self, records: Sequence[ControlRecord], *, per_message: int = 1) -> int:
        """Push ``records``, ``per_message`` to a Celery message; returns messages pushed."""
        if not records:
            return 0
        job_ids = [record.job_id for record in records if record.job_id]
        found = self._ledger.entries(job_ids, fields=("cluster",)) if job_ids else {}
        by_queue: dict[str, list[bytes]] = {}
        for record in records:
            payload = record.encode()
            if record.job_id:
                entry = found.get(record.job_id)
                targets: Sequence[str | None] = (entry.cluster if entry is not None else None,)
            else:
                targets = self._clusters
            for cluster in targets:
                by_queue.setdefault(keys.celery_queue(cluster), []).append(payload)
        return sum(tasks.push(self._client, messages_for(CONTROL_TASK, payloads, per_message=per_message,
                                                         queue=queue), queue=queue)
                   for queue, payloads in by_queue.items())

    def send_encoded(self, payloads: Sequence[bytes], *, per_message: int = 1) -> int:
        """:meth:`send` for records already encoded (the delayed set holds them so)."""
        return self.send([ControlRecord.decode(payload) for payload in payloads], per_message=per_message)
