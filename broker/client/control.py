"""The Python producer API for ``podq:control``: revoke, mark done, delete, adopt."""
from __future__ import annotations

import time

from podq.broker.store import keys, streams
from podq.broker.store.connection import Client
from podq.shared.records import ControlRecord
from podq.shared.states import ControlOp


def send_control(client: Client, record: ControlRecord) -> str:
    """Add a control record to ``podq:control``; returns the stream entry id."""
    return streams.add_records(client, keys.CONTROL_STREAM, [record.encode()])[0]


def revoke(client: Client, *, job_id: str, scheduler_id: str, reason: str | None = None) -> str:
    """Ask podq to revoke a job (no pod if none exists yet; otherwise label and delete it)."""
    return send_control(client, ControlRecord(op=ControlOp.REVOKE, job_id=job_id, scheduler_id=scheduler_id,
                                              reason=reason, requested_at=time.time()))
