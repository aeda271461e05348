"""Control operations in a worker: the Kubernetes side of ``podq.control``.

What each operation does is defined once, in :mod:`podq.broker.control.operations`;
this module is its :class:`~podq.broker.control.operations.Pods`: reads, patches and
deletes with the API error policy. API calls retry transient errors inside the
delivery's budget; past it the whole record goes back through the delayed set
(:func:`retry_later`), for up to ``CONTROL_HORIZON`` seconds after it was first requested.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, TypeVar

from podq.broker.control.operations import CompletionPolicy, Context, RetryLater, apply_control
from podq.broker.control.operations import remove_revoked_pod as remove_pod
from podq.broker.store.delayed import delay_control
from podq.shared.records import ControlRecord

from .errors import KubeApiError, NotFoundError
from .policy import FAIL, RETRY, decide
from .runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")
CONTROL_HORIZON = 3600.0


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
                raise RetryLater(decision.wait, str(exc)) from None
            time.sleep(decision.wait)


class WorkerPods:
    """The operations' Kubernetes calls, each under the API error policy until ``deadline``."""

    def __init__(self, rt: Runtime, *, deadline: float) -> None:
        self._rt = rt
        self._deadline = deadline

    def exists(self, name: str, namespace: str) -> bool:
        rt = self._rt
        return call_api(rt, f"read {name}", lambda: rt.kube.read_pod(name, namespace, timeout=rt.create_timeout),
                        deadline=self._deadline) is not None

    def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> bool:
        return call_api(self._rt, f"patch {name}", lambda: self._rt.kube.patch_pod(name, namespace, patch),
                        deadline=self._deadline) is not None

    def delete(self, name: str, namespace: str, *, options: dict[str, Any] | None = None) -> bool:
        return call_api(self._rt, f"delete {name}",
                        lambda: self._rt.kube.delete_pod(name, namespace, options=options) or True,
                        deadline=self._deadline) is not None


def context(rt: Runtime, *, deadline: float) -> Context:
    worker = rt.settings.worker
    return Context(client=rt.client, ledger=rt.ledger, publisher=rt.publisher, pods=WorkerPods(rt, deadline=deadline),
                   default_namespace=rt.settings.kube.namespace, cluster=rt.cluster,
                   cluster_name=rt.settings.kube.cluster,
                   completion=CompletionPolicy(delete_on_success=worker.delete_on_success,
                                               delete_on_failure=worker.delete_on_failure,
                                               delete_options=rt.delete_options))


def run_control(record: ControlRecord, rt: Runtime, *, deadline: float) -> str:
    """Apply one control record; returns what was done (for logs and tests)."""
    try:
        return apply_control(record, context(rt, deadline=deadline))
    except RetryLater as exc:
        return retry_later(rt, record, wait=exc.wait, why=str(exc))
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
    delay_control(rt.client, payload=record.encode(), delay=wait, cluster=rt.cluster)
    log.info("control %s for %s: retrying in %.1f s (%s)", record.op.value, record.job_id or record.scheduler_id,
             wait, why)
    return "delayed"


def remove_revoked_pod(rt: Runtime, name: str, namespace: str, *, deadline: float | None = None) -> None:
    """Label a pod ``airflow_pod_revoked=True`` and delete it (the watcher publishes ``revoked``)."""
    deadline = deadline if deadline is not None else time.monotonic() + rt.budget
    remove_pod(WorkerPods(rt, deadline=deadline), name, namespace)
