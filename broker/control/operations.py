"""Control operations as a registry: each one's fields, validation and application in one place.

A control record (``podq:control``, or podq's own, see :mod:`.sender`) names an
operation; :data:`OPERATIONS` holds, per :class:`~podq.shared.states.ControlOp`, an
:class:`Operation`:

* ``fields``: the record fields it uses besides ``op`` and ``scheduler_id``
  (``job_id`` means it acts on one job, which must be in the ledger and belong
  to the record's scheduler);
* ``from_producers``: whether intake accepts it on ``podq:control``;
* ``check``: its own validation at intake, beyond the fields (None: nothing more);
* ``apply``: how a worker carries it out, against the ledger, the publisher and a
  :class:`Pods` (the Kubernetes side, implemented by the workers, podq's one
  Kubernetes adapter for it).

Adding an operation: a :class:`~podq.shared.states.ControlOp` value (its wire name)
and its entry here, plus tests; ``tests/unit/test_control_registry.py`` fails until
the two agree. The workers, intake and the watcher find it through this table.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from podq.broker.store import adoption
from podq.broker.store.connection import Client
from podq.broker.store.ledger import Ledger, LedgerEntry
from podq.broker.store.publish import Publisher
from podq.shared import naming
from podq.shared.records import ControlRecord, KubernetesWatch
from podq.shared.states import LIVE_LEDGER_STATES, ControlOp, LedgerState, Source, State
from podq.shared.wire import type_name

log = logging.getLogger(__name__)

# Delete options a producer may pass (the API's DeleteOptions fields), with their types.
DELETE_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "gracePeriodSeconds": int, "propagationPolicy": str, "dryRun": list,
    "preconditions": dict, "orphanDependents": bool,
}
_SNAKE = {"grace_period_seconds": "gracePeriodSeconds", "propagation_policy": "propagationPolicy",
          "dry_run": "dryRun", "orphan_dependents": "orphanDependents"}
ADOPT_MAX_PASSES = 200


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


class RetryLater(Exception):
    """Not now: send the whole record back through the delayed set in ``wait`` seconds."""

    def __init__(self, wait: float, why: str) -> None:
        super().__init__(why)
        self.wait = wait


class Pods(Protocol):
    """The Kubernetes side of applying an operation (the workers implement it).

    Each call returns False when the pod does not exist; transient failures past the
    delivery's budget raise :class:`RetryLater`, final ones the implementation's error.
    """

    def exists(self, name: str, namespace: str) -> bool: ...

    def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> bool: ...

    def delete(self, name: str, namespace: str, *, options: dict[str, Any] | None = None) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class CompletionPolicy:
    """What ``complete`` does with a finished job's pod."""

    delete_on_success: bool = True
    delete_on_failure: bool = False
    delete_options: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class Context:
    """What an operation is applied with."""

    client: Client
    ledger: Ledger
    publisher: Publisher
    pods: Pods
    default_namespace: str
    completion: CompletionPolicy
    cluster: str | None = None
    """The cluster ``pods`` reaches, as records hold it (None: the default)."""
    cluster_name: str | None = None
    """That cluster's name, which the results published here carry."""


Apply = Callable[[ControlRecord, "LedgerEntry | None", Context], str]


@dataclass(frozen=True, kw_only=True)
class Operation:
    op: ControlOp
    fields: tuple[str, ...]
    apply: Apply
    from_producers: bool = True
    check: Callable[[ControlRecord], "str | None"] | None = None

    @property
    def acts_on_job(self) -> bool:
        return "job_id" in self.fields


# -- pod steps shared by several operations ------------------------------------------------------
def remove_revoked_pod(pods: Pods, name: str, namespace: str) -> None:
    """Label a pod ``airflow_pod_revoked=True`` and delete it (the watcher publishes ``revoked``)."""
    if pods.patch(name, namespace, {"metadata": {"labels": {naming.POD_REVOKED: "True"}}}):
        pods.delete(name, namespace)


def _mark_done(pods: Pods, name: str, namespace: str) -> str:
    found = pods.patch(name, namespace, {"metadata": {"labels": {naming.EXECUTOR_DONE: "True"}}})
    return "marked-done" if found else "no-pod"


def _delete(pods: Pods, name: str, namespace: str, options: dict[str, Any] | None) -> str:
    return "deleted" if pods.delete(name, namespace, options=options) else "no-pod"


def _namespace(entry: LedgerEntry, ctx: Context) -> str:
    return entry.namespace or ctx.default_namespace


# -- the operations ------------------------------------------------------------------------------
def _revoke(record: ControlRecord, entry: LedgerEntry | None, ctx: Context) -> str:
    """ledger → revoked; no pod: publish ``revoked``; a pod: label it revoked and delete it."""
    assert entry is not None and entry.pod_name
    moved, state = ctx.ledger.revoke(entry.job_id)
    if not moved and state != LedgerState.REVOKED.value:
        log.info("revoke: job %s is %s; nothing to revoke", entry.job_id, state)
        return "not-revocable"
    namespace = _namespace(entry, ctx)
    if not ctx.pods.exists(entry.pod_name, namespace):
        # No pod, and none will be created: the ledger refuses every later create.
        publish_revoked(ctx.publisher, entry, cluster=ctx.cluster_name)
        log.info("revoke: job %s had no pod; published revoked", entry.job_id)
        return "revoked-without-pod"
    remove_revoked_pod(ctx.pods, entry.pod_name, namespace)
    return "revoked-pod-deleted"


def _mark_done_op(record: ControlRecord, entry: LedgerEntry | None, ctx: Context) -> str:
    assert entry is not None and entry.pod_name
    return _mark_done(ctx.pods, entry.pod_name, _namespace(entry, ctx))


def _delete_op(record: ControlRecord, entry: LedgerEntry | None, ctx: Context) -> str:
    assert entry is not None and entry.pod_name
    return _delete(ctx.pods, entry.pod_name, _namespace(entry, ctx), normalize_delete_options(record.delete_options))


def _complete(record: ControlRecord, entry: LedgerEntry | None, ctx: Context) -> str:
    """The completion policy, for a job whose terminal result is out."""
    assert entry is not None and entry.pod_name
    terminal, namespace, policy = entry.terminal_state, _namespace(entry, ctx), ctx.completion
    if terminal is None:
        log.warning("complete: job %s has no terminal result yet; nothing done", entry.job_id)
        return "not-terminal"
    if terminal == State.REVOKED.value:
        remove_revoked_pod(ctx.pods, entry.pod_name, namespace)
        return "deleted"
    remove = policy.delete_on_success if terminal == State.SUCCEEDED.value else policy.delete_on_failure
    if remove:
        return _delete(ctx.pods, entry.pod_name, namespace, policy.delete_options)
    return _mark_done(ctx.pods, entry.pod_name, namespace)


def _adopt(record: ControlRecord, entry: LedgerEntry | None, ctx: Context) -> str:
    """Move ``record.scheduler_id``'s jobs to ``record.new_scheduler_id`` and relabel their pods."""
    old, new = record.scheduler_id, record.new_scheduler_id
    assert new is not None
    step = adoption.adopt_step(ctx.client, old=old, new=new)
    # Jobs still waiting for their patch count too: a delivery that died after the step
    # and before these notices leaves them to its redelivery (the notices are once-only).
    notify = sorted(set(step.live_jobs) | set(adoption.adopt_pending(ctx.client, old=old, new=new)))
    if notify:
        publish_adopted(ctx.publisher, ctx.ledger, old=old, job_ids=notify)
    log.info("adopt %s -> %s: %d live jobs, %d unread results moved", old, new, len(step.live_jobs),
             step.moved_results)
    patch = {"metadata": {"labels": {naming.AIRFLOW_WORKER: naming.safe_label_value(new)},
                          "annotations": {naming.SCHEDULER_ID_KEY: new}}}
    done, waiting = [], 0
    try:
        for job_id in adoption.adopt_pending(ctx.client, old=old, new=new):
            job = ctx.ledger.get(job_id)
            if job is None or job.state not in LIVE_LEDGER_STATES or not job.pod_name:
                done.append(job_id)
                continue
            if job.cluster != ctx.cluster:
                continue              # the workers of its own cluster patch it (the adopt went to each)
            if ctx.pods.patch(job.pod_name, _namespace(job, ctx), patch) or job.state is LedgerState.CREATED:
                done.append(job_id)   # patched, or the pod is gone (the watcher reports that)
            else:
                waiting += 1          # not created yet; its create may still carry the old owner
    finally:
        adoption.adopt_patched(ctx.client, old=old, new=new, job_ids=done)
    if not waiting:
        return "adopted"
    passes = adoption.adopt_pass(ctx.client, old=old, new=new)
    if passes >= ADOPT_MAX_PASSES:
        log.error("adopt %s -> %s: %d jobs still without a pod after %d passes; giving up", old, new, waiting, passes)
        return "gave-up"
    raise RetryLater(min(30.0, 0.5 * 2 ** min(passes, 6)), f"{waiting} jobs without a pod yet")


def _check_delete_options(record: ControlRecord) -> str | None:
    try:
        normalize_delete_options(record.delete_options)
    except ValueError as exc:
        return f"control.{exc}"
    return None


def _check_adopt(record: ControlRecord) -> str | None:
    if record.new_scheduler_id == record.scheduler_id:
        return "control.new_scheduler_id: a scheduler cannot adopt its own jobs"
    return None


OPERATIONS: dict[ControlOp, Operation] = {operation.op: operation for operation in (
    Operation(op=ControlOp.REVOKE, fields=("job_id", "reason"), apply=_revoke),
    Operation(op=ControlOp.MARK_DONE, fields=("job_id",), apply=_mark_done_op),
    Operation(op=ControlOp.DELETE, fields=("job_id", "delete_options"), apply=_delete_op),
    Operation(op=ControlOp.ADOPT, fields=("new_scheduler_id",), apply=_adopt, check=_check_adopt),
    # podq's own: the watcher asks for it once a job's terminal result is durable.
    Operation(op=ControlOp.COMPLETE, fields=("job_id",), apply=_complete, from_producers=False),
)}


def validate_control(record: ControlRecord, ledger: Ledger) -> str | None:
    """Why intake should refuse ``record``, or None to hand it to the workers."""
    operation = OPERATIONS[record.op]
    if not operation.from_producers:
        return f"control.op: {record.op.value!r} is podq's own operation, not one a producer may send"
    # delete_options are checked whatever the operation: a bad one is a producer's mistake worth naming.
    reason = _check_delete_options(record) or (operation.check(record) if operation.check else None)
    if reason or not operation.acts_on_job:
        return reason
    assert record.job_id is not None
    entry = ledger.get(record.job_id)
    if entry is None:
        return f"control.job_id: no job {record.job_id} in the ledger"
    if entry.scheduler_id != record.scheduler_id:
        return (f"control.scheduler_id: job {record.job_id} belongs to another scheduler "
                f"({entry.scheduler_id!r})")
    return None


def apply_control(record: ControlRecord, ctx: Context) -> str:
    """Carry out one control record; returns what was done (for logs and tests).

    Raises :class:`RetryLater` (send the record back later) or the :class:`Pods`
    implementation's final error.
    """
    operation = OPERATIONS[record.op]
    entry = None
    if operation.acts_on_job:
        entry = ctx.ledger.get(record.job_id or "")
        if entry is None or entry.pod_name is None:
            log.warning("control %s: job %s is not in the ledger; nothing to do", record.op.value, record.job_id)
            return "unknown-job"
    return operation.apply(record, entry, ctx)


# -- podq's own requests (sent with :class:`podq.broker.control.sender.ControlSender`) ---------
def completion_request(*, job_id: str, scheduler_id: str) -> ControlRecord:
    """Apply the completion policy to ``job_id`` (its terminal result is durable).

    Idempotent: a worker acts only on a terminal job, and deleting or labelling a pod
    twice changes nothing.
    """
    return ControlRecord(op=ControlOp.COMPLETE, scheduler_id=scheduler_id, job_id=job_id,
                         requested_at=time.time())


def delete_request(*, job_id: str, scheduler_id: str, reason: str) -> ControlRecord:
    """Delete a job's pod now, grace 0 (the ledger is not changed)."""
    return ControlRecord(op=ControlOp.DELETE, scheduler_id=scheduler_id, job_id=job_id,
                         delete_options={"gracePeriodSeconds": 0}, reason=reason, requested_at=time.time())


# -- results the operations publish --------------------------------------------------------------
def publish_revoked(publisher: Publisher, entry: LedgerEntry, *, reason: str | None = None,
                    cluster: str | None = None) -> str:
    """Publish ``revoked`` for a job that has no pod; "" when its terminal result was out already."""
    if entry.job is None:
        return ""
    result = KubernetesWatch.build(job_id=entry.job_id, scheduler_id=entry.scheduler_id or entry.job.scheduler_id,
                                   key=entry.job.key, source=Source.BROKER, state=State.REVOKED,
                                   pod_name=entry.pod_name, namespace=entry.namespace, cluster=cluster)
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
