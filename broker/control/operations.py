"""Broker-side steps of control operations (revoke, mark done, delete, adopt, complete).

* :func:`validate_control` is intake's check of a ``podq:control`` record.
* :func:`publish_revoked` and :func:`publish_adopted` publish through the publish script.
  (Adoption's atomic step lives in :mod:`podq.broker.store.adoption`.)
* :func:`request_completion` asks the workers to apply the completion policy to a
  job whose terminal result is durable (the watcher calls it after publishing).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import redis

from podq.broker.queue.envelopes import dispatch_control
from podq.broker.store.ledger import Ledger, LedgerEntry
from podq.broker.store.publish import Publisher
from podq.shared.records import ControlRecord, KubernetesWatch
from podq.shared.states import ControlOp, Source, State
from podq.shared.wire import type_name

# Delete options a producer may pass (the API's DeleteOptions fields), with their types.
DELETE_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "gracePeriodSeconds": int, "propagationPolicy": str, "dryRun": list,
    "preconditions": dict, "orphanDependents": bool,
}
_SNAKE = {"grace_period_seconds": "gracePeriodSeconds", "propagation_policy": "propagationPolicy",
          "dry_run": "dryRun", "orphan_dependents": "orphanDependents"}


def normalize_delete_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Delete options in the API's spelling (snake_case accepted); raises ValueError when invalid."""
    normalized: dict[str, Any] = {}
    for name, value in (options or {}).items():
        field = _SNAKE.get(name, name)
        kind = DELETE_OPTIONS.get(field)
        if kind is None:
            raise ValueError(f"delete_options.{name}: not a delete option "
                             f"(allowed: {', '.join(sorted(DELETE_OPTIONS))})")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"delete_options.{name}: expected {type_name(kind())}")
        if field == "gracePeriodSeconds" and value < 0:
            raise ValueError(f"delete_options.{name}: must not be negative")
        if field == "propagationPolicy" and value not in ("Orphan", "Background", "Foreground"):
            raise ValueError(f"delete_options.{name}: expected Orphan, Background or Foreground")
        normalized[field] = value
    return normalized


def validate_control(record: ControlRecord, ledger: Ledger) -> str | None:
    """Why intake should refuse ``record``, or None to hand it to the workers."""
    if record.op is ControlOp.COMPLETE:
        return "control.op: 'complete' is podq's own operation, not one a producer may send"
    try:
        normalize_delete_options(record.delete_options)
    except ValueError as exc:
        return f"control.{exc}"
    if record.op is ControlOp.ADOPT:
        if record.new_scheduler_id == record.scheduler_id:
            return "control.new_scheduler_id: a scheduler cannot adopt its own jobs"
        return None
    entry = ledger.get(record.job_id)
    if entry is None:
        return f"control.job_id: no job {record.job_id} in the ledger"
    if entry.scheduler_id != record.scheduler_id:
        return (f"control.scheduler_id: job {record.job_id} belongs to another scheduler "
                f"({entry.scheduler_id!r})")
    return None


def request_completion(client: redis.Redis, *, job_id: str, scheduler_id: str) -> None:
    """Ask the workers to apply the completion policy to ``job_id`` (its result is durable).

    Idempotent: a worker acts only on a terminal job, and deleting or labelling a pod
    twice changes nothing.
    """
    record = ControlRecord(op=ControlOp.COMPLETE, scheduler_id=scheduler_id, job_id=job_id,
                           requested_at=time.time())
    dispatch_control(client, [record.encode()])


def publish_revoked(publisher: Publisher, entry: LedgerEntry, *, reason: str | None = None) -> str:
    """Publish ``revoked`` for a job that has no pod; "" when its terminal result was out already."""
    if entry.job is None:
        return ""
    result = KubernetesWatch.build(job_id=entry.job_id, scheduler_id=entry.scheduler_id or entry.job.scheduler_id,
                                   key=entry.job.key, source=Source.BROKER, state=State.REVOKED,
                                   pod_name=entry.pod_name, namespace=entry.namespace)
    return publisher.publish([result])[0]


def publish_adopted(publisher: Publisher, ledger: Ledger, *, old: str, job_ids: Sequence[str]) -> int:
    """Tell ``old``'s stream each job was adopted (once per job; sets no terminal latch)."""
    results = []
    for job_id in job_ids:
        entry = ledger.get(job_id)
        if entry is None or entry.job is None:
            continue
        results.append(KubernetesWatch.build(job_id=job_id, scheduler_id=old, key=entry.job.key,
                                             source=Source.BROKER, state=State.ADOPTED,
                                             pod_name=entry.pod_name, namespace=entry.namespace))
    return sum(1 for entry_id in publisher.publish(results) if entry_id) if results else 0
