"""The one way podq's own components hand control records to the workers.

Intake (records admitted from ``podq:control``), the watcher (completions, and
deletes after a pending deadline) and the delayed set's release all send through
:class:`ControlSender`: ``podq.control`` Celery messages, pushed in one LPUSH.
Producers do not use it; they add records to ``podq:control``
(:mod:`podq.broker.client.control`), which intake checks first.
"""
from __future__ import annotations

from typing import Sequence

from podq.broker.queue.envelopes import CONTROL_TASK, messages_for
from podq.broker.store import tasks
from podq.broker.store.connection import Client
from podq.shared.records import ControlRecord

# Completions travel several to a Celery message: they come in bursts, one per finished job.
COMPLETIONS_PER_MESSAGE = 8


class ControlSender:
    def __init__(self, client: Client) -> None:
        self._client = client

    def send(self, records: Sequence[ControlRecord], *, per_message: int = 1) -> int:
        """Push ``records``, ``per_message`` to a Celery message; returns messages pushed."""
        return self.send_encoded([record.encode() for record in records], per_message=per_message)

    def send_encoded(self, payloads: Sequence[bytes], *, per_message: int = 1) -> int:
        """:meth:`send` for records already encoded (the delayed set holds them so)."""
        return tasks.push(self._client, messages_for(CONTROL_TASK, payloads, per_message=per_message))
