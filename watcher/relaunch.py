"""Launch failures: a pod that ended before its main container started is created again, costing no try.

Airflow's KubernetesExecutor re-queues a task whose pod failed while the task instance was still
queued (``pod_launch_failure_retries``, default 1; not for the container reasons in
``pod_launch_failure_excluded_container_reasons``, default ``Error``), in scheduler memory. podq does
it in the ledger: the watcher's end of such a pod (:attr:`.classify.Verdict.launch_failure`: evicted,
preempted, its node lost, deleted by something else, a fatal waiting reason) first asks
``lua/relaunch.lua`` to move the job back to dispatched for its next launch, a pod of its own name
(:func:`podq.shared.naming.pod_name_for`), at most ``1 + launch_retries`` launches. When it does,
the scheduler gets a ``pending`` with reason ``Relaunched`` instead of the failure, the job's create
task is pushed, and the old pod (if it still exists) is labelled done; the count lives in the ledger,
so a restart of any service keeps it, and the script's compare-and-set on the pod's name and launch
makes a pod's relaunch happen once. A crash between the script and the push leaves the job
dispatched in the in-flight set: intake's orphan sweep pushes it again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

from podq.broker.queue.envelopes import dispatch_routed
from podq.broker.store.ledger import LedgerEntry
from podq.shared import metrics, naming
from podq.shared.records import PendingReason
from podq.shared.settings import WatcherSettings
from podq.shared.states import LedgerState, State

from .tracker import Intent

log = logging.getLogger(__name__)

RELAUNCHED = "Relaunched"
_MAX_LAUNCHES_SEARCHED = 64


@dataclass(frozen=True)
class LaunchPolicy:
    """How many times a job's pod may be launched again, and which container reasons never are."""

    retries: int = 1
    excluded: frozenset[str] = frozenset({"Error"})

    @classmethod
    def of(cls, settings: WatcherSettings) -> "LaunchPolicy":
        return cls(retries=settings.launch_retries, excluded=frozenset(settings.launch_retry_excluded_reasons))

    def may(self, intent: Intent) -> bool:
        details = intent.details
        return (self.retries > 0 and intent.launch_failure and intent.state in (State.FAILED, State.LOST)
                and not (details is not None and details.container_reason in self.excluded))


def relaunch(broker, intents: Sequence[Intent], policy: LaunchPolicy, *, per_message: int = 10) -> list[Intent]:
    """Turn the launch failures among ``intents`` that the ledger relaunches into ``pending``; push their
    create tasks. Returns copies of the ones to ask about again later (their create's answer is not in
    the ledger yet: the watch came first); those publish nothing now."""
    payloads: list[tuple[str | None, bytes]] = []
    later = []
    for intent in intents:
        if not policy.may(intent):
            continue
        entry = broker.ledger.get(intent.identity.job_id)
        if entry is None or entry.job is None:
            continue
        launch = launch_of(entry, intent.pod_name)
        if launch is None:
            continue
        next_name = naming.pod_name_for(entry.job.job_id, entry.job.key, launch=launch + 1)
        tag, value = broker.ledger.relaunch(entry.job_id, pod_name=intent.pod_name, launch=launch,
                                            next_pod_name=next_name, max_launches=1 + policy.retries)
        if tag == "STALE":
            # Relaunched already (a replay after a restart): its pending again (dropped when out already),
            # its create task again while no pod is recorded (a duplicate is harmless).
            if entry.launch != launch + 1:
                _silence(intent)
                continue
            if entry.state is LedgerState.DISPATCHED:
                payloads.append((entry.job.cluster, entry.job.encode()))
        elif tag == "WAIT":
            later.append(replace(intent, stored=None))
            _silence(intent)
            continue
        elif tag == "RELAUNCHED":
            payloads.append((entry.job.cluster, entry.job.encode()))
            metrics.LAUNCH_RETRIES.inc()
            log.warning("job %s: pod %s ended before it started (%s); launch %d of %d as %s", entry.job_id,
                        intent.ref, _why(intent), launch + 1, 1 + policy.retries, next_name)
        else:
            continue
        _pending(intent, launch=launch + 1, launches=1 + policy.retries, next_name=next_name)
    if payloads:
        dispatch_routed(broker.client, payloads, per_message=per_message)   # each to its cluster's queue
    return later


def launch_of(entry: LedgerEntry, pod_name: str) -> int | None:
    """Which launch of its job the pod named ``pod_name`` is (None: none of them)."""
    assert entry.job is not None
    for launch in range(1, min(entry.launch, _MAX_LAUNCHES_SEARCHED) + 1):
        if naming.pod_name_for(entry.job.job_id, entry.job.key, launch=launch) == pod_name:
            return launch
    return None


def _why(intent: Intent) -> str:
    details = intent.details
    if details is None:
        return intent.note or "ended"
    parts = [details.pod_reason or details.container_reason or details.reason or intent.note,
             details.pod_message or details.container_message or details.message]
    return ": ".join(part for part in parts if part)


def _pending(intent: Intent, *, launch: int, launches: int, next_name: str) -> None:
    why = _why(intent)
    intent.pending_reason = PendingReason(
        reason=RELAUNCHED, message=f"pod {intent.pod_name} ended before it started ({why}); "
                                   f"launching it again as pod {next_name} (launch {launch} of {launches})")
    intent.state, intent.again, intent.details = State.PENDING, f"launch-{launch}", None
    intent.ledger_decides, intent.complete, intent.uid = False, False, None
    intent.retire_pod = not intent.stored == b""   # a pod still there (Failed) leaves the watch


def _silence(intent: Intent) -> None:
    intent.state, intent.details, intent.complete, intent.ledger_decides = None, None, False, False
