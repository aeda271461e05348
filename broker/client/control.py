"""The Python producer API for ``podq:control``: revoke, mark done, delete, adopt."""
from __future__ import annotations

import time

import redis

from podq.broker.store import keys
from podq.shared.records import ControlRecord
from podq.shared.states import ControlOp


def send_control(client: redis.Redis, record: ControlRecord) -> str:
    """Add a control record to ``podq:control``; returns the stream entry id."""
    return client.xadd(keys.CONTROL_STREAM, {keys.RECORD_FIELD: record.encode()}).decode()


def revoke(client: redis.Redis, *, job_id: str, scheduler_id: str, reason: str | None = None) -> str:
    """Ask podq to revoke a job (no pod if none exists yet; otherwise label and delete it)."""
    return send_control(client, ControlRecord(op=ControlOp.REVOKE, job_id=job_id, scheduler_id=scheduler_id,
                                              reason=reason, requested_at=time.time()))
