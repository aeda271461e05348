"""The reconciler: ends jobs that have no pod and no one left to end them.

Run by the leader of each scope, over the ledger (and counting, as it passes, the jobs waiting for a pod
longer than ``stuck_after``: ``podq_jobs_stuck``): a job still ``accepted`` or
``dispatched`` after ``lost_after`` seconds with no pod, and a ``created`` job
whose pod is gone (past ``created_grace``) without a terminal result, end
``lost``; a ``revoked`` job whose pod is gone ends ``revoked``. "No pod" means
the scope's tracker does not know it and the API answers 404 for its name. A
pod that exists but has left the watcher's selector before its job's terminal
result (labelled done, or relabelled) ends the job by its status now
(:func:`.classify.left_the_watch`): no event of it will ever come.

A live job in a namespace that no watcher replica leads (no lease on the namespace's
scope nor on the all-namespaces one) could never end: nobody sees its pod. Once the
namespace has gone unled for ``lost_after`` seconds, as seen by this replica, and the
job is that old too, it ends ``lost`` with reason ``NamespaceNotWatched`` and its pod,
if any, is deleted by the workers (it would run unobserved).
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from podq.broker.control.operations import delete_request
from podq.broker.store.ledger import LedgerEntry
from podq.shared import metrics
from podq.shared.records import FailureDetails
from podq.shared.settings import WatcherSettings
from podq.shared.states import LedgerState, State

from .classify import left_the_watch
from .events import in_selector, pod_view
from .kube import KubePods
from .publishing import Broker, Scope
from .scope import ScopeRunner
from .tracker import Intent
from .unseen import job_intent

log = logging.getLogger(__name__)
_WAITING = (LedgerState.ACCEPTED, LedgerState.DISPATCHED)


def candidate(brief: LedgerEntry, *, now: float, settings: WatcherSettings) -> State | None:
    """What the job would end as if its pod turns out not to exist; None: leave it alone."""
    if brief.terminal_state or brief.state is None or not brief.pod_name:
        return None
    age = now - (brief.updated_at or now)
    if brief.state in _WAITING:
        return State.LOST if age >= settings.lost_after else None
    if brief.state is LedgerState.CREATED:
        return State.LOST if age >= settings.created_grace else None
    if brief.state is LedgerState.REVOKED:
        return State.REVOKED if age >= settings.created_grace else None
    return None


class Reconciler:
    def __init__(self, *, broker: Broker, kube: KubePods, settings: WatcherSettings, default_namespace: str,
                 runners: Callable[[], list[ScopeRunner]], cluster: str | None = None) -> None:
        """``cluster``: the cluster this watcher reaches, as records hold it (None: the default); the
        reconciler leaves every other cluster's jobs alone."""
        self._cluster = cluster
        self._broker = broker
        self._ledger = broker.ledger
        self._kube = kube
        self._settings = settings
        self._default_namespace = default_namespace
        self._runners = runners
        self._unled_since: dict[str, float] = {}   # namespace -> when this replica first saw it unled

    def step(self) -> int:
        """One pass over the ledger; returns how many jobs it ended."""
        runners = [runner for runner in self._runners() if runner.synced.is_set() and not runner.stop.is_set()]
        if not runners:
            return 0
        ended = 0
        now = time.time()
        unled: dict[str, bool] = {}
        stuck = {runner.scope.name: 0 for runner in runners}
        for page in self._ledger.scan_live():
            for brief in page:
                if brief.cluster != self._cluster:
                    continue            # another cluster's watchers and reconciler see to it
                namespace = brief.namespace or self._default_namespace
                runner = next((r for r in runners if r.scope.covers(namespace, brief.cluster)), None)
                if runner is not None and self._stuck(brief, now=now):
                    stuck[runner.scope.name] += 1
                if runner is None:
                    if namespace not in unled:
                        unled[namespace] = self._unled(namespace, now=now)
                    if unled[namespace] and self._end_unwatched(brief, namespace, runners[0], now=now):
                        ended += 1
                    continue
                state = candidate(brief, now=now, settings=self._settings)
                if state is None or runner.tracker is None:
                    continue
                ref = f"{namespace}/{brief.pod_name}"
                if runner.tracker.knows(ref):
                    continue
                raw = self._kube.read(namespace, brief.pod_name)
                if raw is not None and in_selector(raw):
                    continue
                if raw is None:
                    intent = self._intent(brief, state, ref)
                else:   # the pod left the watch before its terminal result: its status decides
                    verdict = left_the_watch(pod_view(raw))
                    intent = self._intent(brief, verdict.state, ref, details=verdict.details,
                                          note=f"reconciler: {verdict.note}")
                    if intent is not None:
                        intent.ledger_decides = verdict.ledger_decides
                if intent is not None:
                    runner.publish_external([intent])
                    metrics.RECONCILER_ENDINGS.labels(intent.state.value).inc()
                    ended += 1
        for scope, count in stuck.items():
            metrics.JOBS_STUCK.labels(scope).set(count)
        if ended:
            log.info("reconciler: ended %d jobs that had no pod or no watcher", ended)
        return ended

    def _stuck(self, brief: LedgerEntry, *, now: float) -> bool:
        """Accepted or dispatched, no terminal result, for longer than ``stuck_after``: no pod yet."""
        return (brief.state in _WAITING and not brief.terminal_state
                and now - (brief.updated_at or now) >= self._settings.stuck_after)

    def _unled(self, namespace: str, *, now: float) -> bool:
        """True once no replica has led ``namespace`` (nor all namespaces) for ``lost_after`` seconds."""
        scopes = (Scope.of(namespace, cluster=self._cluster).name, Scope.of(None, cluster=self._cluster).name)
        if any(self._broker.store.lease_holder(scope) is not None for scope in scopes):
            self._unled_since.pop(namespace, None)
            return False
        since = self._unled_since.setdefault(namespace, now)
        return now - since >= self._settings.lost_after

    def _end_unwatched(self, brief: LedgerEntry, namespace: str, runner: ScopeRunner, *, now: float) -> bool:
        """End a live job of an unled namespace (see the module docstring); True when it was ended."""
        if brief.terminal_state or brief.state is None or not brief.pod_name:
            return False
        if now - (brief.updated_at or now) < self._settings.lost_after:
            return False
        details = FailureDetails(
            reason="NamespaceNotWatched",
            message=f"no watcher has watched namespace {namespace!r} for {self._settings.lost_after:.0f} s, "
                    "so this job's pod could never be seen to finish; its pod is deleted "
                    "(watch the namespace: PODQ_WATCHER_NAMESPACES, or refuse it: PODQ_INTAKE_NAMESPACES)")
        revoked = brief.state is LedgerState.REVOKED
        intent = self._intent(brief, State.REVOKED if revoked else State.LOST, f"{namespace}/{brief.pod_name}",
                              details=None if revoked else details, note="reconciler: namespace not watched")
        if intent is None:
            return False
        runner.publish_external([intent])
        self._broker.control.send([delete_request(job_id=brief.job_id, scheduler_id=intent.identity.scheduler_id,
                                                  reason="namespace not watched")])
        log.warning("job %s in namespace %s: ended %s, no watcher watches that namespace", brief.job_id,
                    namespace, intent.state.value)
        return True

    def _intent(self, brief: LedgerEntry, state: State, ref: str, *, details: FailureDetails | None = None,
                note: str = "reconciler: no pod") -> Intent | None:
        if details is None and state is State.LOST:
            why = ("its pod was never created" if brief.state in _WAITING
                   else "its pod disappeared before a terminal result")
            details = FailureDetails(reason="PodMissing", message=f"job {brief.state.value}: {why}")
        return job_intent(self._ledger, brief, state, ref, details=details, note=note)
