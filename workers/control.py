"""Control operations: the plain functions behind ``podq.control``.

revoke, mark_done, delete, adopt, and complete (the completion policy). Each is
idempotent: running one twice, or after the job ended, changes nothing more.
API calls retry transient errors inside the delivery's budget; past it the whole
record goes back through the delayed set (:func:`retry_later`), for up to
``CONTROL_HORIZON`` seconds after it was first requested.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, TypeVar

from podq.broker.control import operations as broker_control
from podq.broker.store import adoption
from podq.broker.store.delayed import delay_control
from podq.shared import naming
from podq.shared.records import ControlRecord
from podq.shared.states import ControlOp, LedgerState, State

from .errors import KubeApiError, NotFoundError
from .policy import FAIL, RETRY, decide
from .runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")
CONTROL_HORIZON = 3600.0
ADOPT_MAX_PASSES = 200


class RetryLater(Exception):
    """An API call kept failing transiently for the whole budget; ``wait`` before the next try."""

    def __init__(self, wait: float, error: KubeApiError) -> None:
        super().__init__(str(error))
        self.wait = wait
        self.error = error


def call_api(rt: Runtime, what: str, fn: Callable[[], T], *, deadline: float) -> T | None:
    """``fn()`` with the API error policy; None for 404 (already gone); KubeApiError when final."""
    attempt = 0
    while True:
        try:
            return fn()
        except NotFoundError:
            return None
        except KubeApiError as exc:
            attempt += 1
            decision = decide(exc, attempt=attempt, remaining=deadline - time.monotonic())
            log.info("%s: attempt %d: %s -> %s", what, attempt, exc, decision.action)
            if decision.action == FAIL:
                raise
            if decision.action != RETRY:
                raise RetryLater(decision.wait, exc) from None
            time.sleep(decision.wait)


def run_control(record: ControlRecord, rt: Runtime, *, deadline: float) -> str:
    """Apply one control record; returns what was done (for logs and tests)."""
    try:
        if record.op is ControlOp.ADOPT:
            return adopt(rt, record, deadline=deadline)
        entry = rt.ledger.get(record.job_id)
        if entry is None or entry.pod_name is None:
            log.warning("control %s: job %s is not in the ledger; nothing to do", record.op.value, record.job_id)
            return "unknown-job"
        namespace = entry.namespace or rt.settings.kube.namespace
        if record.op is ControlOp.REVOKE:
            return revoke(rt, entry, namespace=namespace, deadline=deadline)
        if record.op is ControlOp.MARK_DONE:
            return mark_done(rt, entry.pod_name, namespace, deadline=deadline)
        if record.op is ControlOp.DELETE:
            options = broker_control.normalize_delete_options(record.delete_options)
            return delete(rt, entry.pod_name, namespace, options=options, deadline=deadline)
        if record.op is ControlOp.COMPLETE:
            return complete(rt, entry, namespace=namespace, deadline=deadline)
        return "unsupported"
    except RetryLater as exc:
        return retry_later(rt, record, wait=exc.wait, why=str(exc.error))
    except KubeApiError as exc:
        log.error("control %s for job %s failed for good: %s", record.op.value, record.job_id, exc)
        return "failed"


def retry_later(rt: Runtime, record: ControlRecord, *, wait: float, why: str) -> str:
    now = time.time()
    if record.requested_at and now - record.requested_at > CONTROL_HORIZON:
        log.error("control %s for %s: giving up after %.0f s: %s", record.op.value,
                  record.job_id or record.scheduler_id, now - record.requested_at, why)
        return "gave-up"
    if not record.requested_at:
        record = dataclasses.replace(record, requested_at=now)
    delay_control(rt.client, payload=record.encode(), delay=wait)
    log.info("control %s for %s: retrying in %.1f s (%s)", record.op.value, record.job_id or record.scheduler_id,
             wait, why)
    return "delayed"


def revoke(rt: Runtime, entry, *, namespace: str, deadline: float) -> str:
    """ledger → revoked; no pod: publish ``revoked``; a pod: label it revoked and delete it."""
    moved, state = rt.ledger.revoke(entry.job_id)
    if not moved and state != LedgerState.REVOKED.value:
        log.info("revoke: job %s is %s; nothing to revoke", entry.job_id, state)
        return "not-revocable"
    pod = call_api(rt, f"revoke {entry.pod_name}",
                   lambda: rt.kube.read_pod(entry.pod_name, namespace, timeout=rt.create_timeout), deadline=deadline)
    if pod is None:
        # No pod, and none will be created: the ledger refuses every later create.
        broker_control.publish_revoked(rt.publisher, entry)
        log.info("revoke: job %s had no pod; published revoked", entry.job_id)
        return "revoked-without-pod"
    remove_revoked_pod(rt, entry.pod_name, namespace, deadline=deadline)
    return "revoked-pod-deleted"


def remove_revoked_pod(rt: Runtime, name: str, namespace: str, *, deadline: float | None = None) -> None:
    """Label a pod ``airflow_pod_revoked=True`` and delete it (the watcher publishes ``revoked``)."""
    deadline = deadline if deadline is not None else time.monotonic() + rt.budget
    patch = {"metadata": {"labels": {naming.POD_REVOKED: "True"}}}
    if call_api(rt, f"label {name} revoked", lambda: rt.kube.patch_pod(name, namespace, patch), deadline=deadline):
        call_api(rt, f"delete {name}", lambda: rt.kube.delete_pod(name, namespace), deadline=deadline)


def mark_done(rt: Runtime, name: str, namespace: str, *, deadline: float) -> str:
    patch = {"metadata": {"labels": {naming.EXECUTOR_DONE: "True"}}}
    found = call_api(rt, f"mark {name} done", lambda: rt.kube.patch_pod(name, namespace, patch), deadline=deadline)
    return "marked-done" if found else "no-pod"


def delete(rt: Runtime, name: str, namespace: str, *, options: dict, deadline: float) -> str:
    result = call_api(rt, f"delete {name}", lambda: rt.kube.delete_pod(name, namespace, options=options) or True,
                      deadline=deadline)
    return "deleted" if result else "no-pod"


def complete(rt: Runtime, entry, *, namespace: str, deadline: float) -> str:
    """The completion policy, for a job whose terminal result is out."""
    terminal = entry.terminal_state
    if terminal is None:
        log.warning("complete: job %s has no terminal result yet; nothing done", entry.job_id)
        return "not-terminal"
    worker = rt.settings.worker
    if terminal == State.REVOKED.value:
        remove_revoked_pod(rt, entry.pod_name, namespace, deadline=deadline)
        return "deleted"
    remove = worker.delete_on_success if terminal == State.SUCCEEDED.value else worker.delete_on_failure
    if remove:
        return delete(rt, entry.pod_name, namespace, options=rt.delete_options, deadline=deadline)
    return mark_done(rt, entry.pod_name, namespace, deadline=deadline)


def adopt(rt: Runtime, record: ControlRecord, *, deadline: float) -> str:
    """Move ``record.scheduler_id``'s jobs to ``record.new_scheduler_id`` and relabel their pods."""
    old, new = record.scheduler_id, record.new_scheduler_id
    step = adoption.adopt_step(rt.client, old=old, new=new)
    # Jobs still waiting for their patch count too: a delivery that died after the step
    # and before these notices leaves them to its redelivery (the notices are once-only).
    notify = sorted(set(step.live_jobs) | set(adoption.adopt_pending(rt.client, old=old, new=new)))
    if notify:
        broker_control.publish_adopted(rt.publisher, rt.ledger, old=old, job_ids=notify)
    log.info("adopt %s -> %s: %d live jobs, %d unread results moved", old, new, len(step.live_jobs),
             step.moved_results)
    patch = {"metadata": {"labels": {naming.AIRFLOW_WORKER: naming.safe_label_value(new)},
                          "annotations": {naming.SCHEDULER_ID_KEY: new}}}
    done, waiting = [], 0
    try:
        for job_id in adoption.adopt_pending(rt.client, old=old, new=new):
            entry = rt.ledger.get(job_id)
            if entry is None or entry.state not in (LedgerState.ACCEPTED, LedgerState.DISPATCHED, LedgerState.CREATED):
                done.append(job_id)
                continue
            namespace = entry.namespace or rt.settings.kube.namespace
            patched = call_api(rt, f"adopt {entry.pod_name}",
                               lambda: rt.kube.patch_pod(entry.pod_name, namespace, patch), deadline=deadline)
            if patched is not None or entry.state is LedgerState.CREATED:
                done.append(job_id)   # patched, or the pod is gone (the watcher reports that)
            else:
                waiting += 1          # not created yet; its create may still carry the old owner
    finally:
        adoption.adopt_patched(rt.client, old=old, new=new, job_ids=done)
    if not waiting:
        return "adopted"
    passes = adoption.adopt_pass(rt.client, old=old, new=new)
    if passes >= ADOPT_MAX_PASSES:
        log.error("adopt %s -> %s: %d jobs still without a pod after %d passes; giving up", old, new, waiting, passes)
        return "gave-up"
    return retry_later(rt, record, wait=min(30.0, 0.5 * 2 ** min(passes, 6)), why=f"{waiting} jobs without a pod yet")
