"""The reconciler: ends jobs that have no pod and no one left to end them.

Run by the leader of each scope, over the ledger: a job still ``accepted`` or
``dispatched`` after ``lost_after`` seconds with no pod, and a ``created`` job
whose pod is gone (past ``created_grace``) without a terminal result, end
``lost``; a ``revoked`` job whose pod is gone ends ``revoked``. "No pod" means
the scope's tracker does not know it and the API answers 404 for its name.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from podq.broker.store.ledger import Ledger, LedgerEntry
from podq.shared import naming
from podq.shared.records import FailureDetails
from podq.shared.settings import WatcherSettings
from podq.shared.states import LedgerState, State

from .events import PodIdentity
from .kube import KubePods
from .scope import ScopeRunner
from .tracker import Intent

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
    def __init__(self, *, ledger: Ledger, kube: KubePods, settings: WatcherSettings, default_namespace: str,
                 runners: Callable[[], list[ScopeRunner]]) -> None:
        self._ledger = ledger
        self._kube = kube
        self._settings = settings
        self._default_namespace = default_namespace
        self._runners = runners

    def step(self) -> int:
        """One pass over the ledger; returns how many jobs it ended."""
        runners = [runner for runner in self._runners() if runner.synced.is_set() and not runner.stop.is_set()]
        if not runners:
            return 0
        ended = 0
        now = time.time()
        for page in self._ledger.scan_live():
            for brief in page:
                state = candidate(brief, now=now, settings=self._settings)
                if state is None:
                    continue
                namespace = brief.namespace or self._default_namespace
                runner = next((r for r in runners if r.scope.covers(namespace)), None)
                if runner is None or runner.tracker is None:
                    continue
                ref = f"{namespace}/{brief.pod_name}"
                if runner.tracker.knows(ref) or self._kube.exists(namespace, brief.pod_name):
                    continue
                intent = self._intent(brief, state, ref)
                if intent is not None:
                    runner.publish_external([intent])
                    ended += 1
        if ended:
            log.info("reconciler: ended %d jobs that had no pod", ended)
        return ended

    def _intent(self, brief: LedgerEntry, state: State, ref: str) -> Intent | None:
        entry = self._ledger.get(brief.job_id)
        if entry is None or entry.job is None or entry.terminal_state:
            return None
        job = entry.job
        scheduler_id = entry.scheduler_id or job.scheduler_id
        identity = PodIdentity(job_id=job.job_id, scheduler_id=scheduler_id, key=job.key,
                               annotations=naming.pod_annotations(job_id=job.job_id, scheduler_id=scheduler_id,
                                                                  key=job.key))
        details = None
        if state is State.LOST:
            why = ("its pod was never created" if brief.state in _WAITING
                   else "its pod disappeared before a terminal result")
            details = FailureDetails(reason="PodMissing", message=f"job {brief.state.value}: {why}")
        return Intent(ref=ref, identity=identity, state=state, details=details, note="reconciler: no pod")
