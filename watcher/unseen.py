"""Jobs whose pod the ledger says exists but no watch event ever showed: found at a relist.

A list shows only what exists when it runs. A pod created and deleted before the first
list of a scope (the watcher started after the workers, or resumed after a compaction)
leaves no event at all, and its job would wait for the reconciler's grace
(``PODQ_WATCHER_CREATED_GRACE``). So a relist first notes the scope's jobs whose ledger
step ``created`` is already recorded; any of them the list and the tracker do not know
had its pod before the list began, and the pod's absence is final: the job ends at once
(``lost``, reason ``PodVanished``; ``revoked`` when the ledger says so), or by the pod's
status when it exists outside the watcher's selector.
"""
from __future__ import annotations

from typing import Callable, Iterable

from podq.broker.store.ledger import Ledger, LedgerEntry
from podq.shared import naming
from podq.shared.records import FailureDetails
from podq.shared.states import LedgerState, State

from .classify import left_the_watch
from .events import PodIdentity, in_selector, pod_view
from .tracker import Intent

VANISHED = FailureDetails(reason="PodVanished", message="the pod was created and deleted before the watcher "
                                                         "listed its namespace: no event of it was ever seen")


def created_jobs(ledger: Ledger, covers: Callable[[str, str | None], bool], *,
                 default_namespace: str) -> list[LedgerEntry]:
    """The live jobs whose ``created`` step is recorded, in the namespaces and cluster ``covers`` accepts."""
    return [brief for page in ledger.scan_live() for brief in page
            if brief.state is LedgerState.CREATED and not brief.terminal_state and brief.pod_name
            and covers(brief.namespace or default_namespace, brief.cluster)]


def unseen_endings(ledger: Ledger, before: Iterable[LedgerEntry], *, seen: Callable[[str], bool],
                   read: Callable[[str, str], dict | None], default_namespace: str) -> list[Intent]:
    """Intents ending each job of ``before`` (read before the list) whose pod nobody saw."""
    intents = []
    for brief in before:
        namespace = brief.namespace or default_namespace
        ref = f"{namespace}/{brief.pod_name}"
        if seen(ref):
            continue
        raw = read(namespace, brief.pod_name)
        if raw is None:
            intent = job_intent(ledger, brief, State.LOST, ref, details=VANISHED, note="created, never seen")
            ledger_decides = True
        elif not in_selector(raw):
            verdict = left_the_watch(pod_view(raw))
            intent = job_intent(ledger, brief, verdict.state, ref, details=verdict.details, note=verdict.note)
            ledger_decides = verdict.ledger_decides
        else:
            continue  # created after the list's snapshot: the watch brings its events
        if intent is not None:
            intent.ledger_decides = ledger_decides
            intents.append(intent)
    return intents


def job_intent(ledger: Ledger, brief: LedgerEntry, state: State, ref: str, *,
               details: FailureDetails | None, note: str) -> Intent | None:
    """An intent publishing ``state`` for ``brief``'s job, its identity from the ledger's job record;
    None when the job has ended meanwhile (or its record cannot be read)."""
    entry = ledger.get(brief.job_id)
    if entry is None or entry.job is None or entry.terminal_state:
        return None
    job = entry.job
    scheduler_id = entry.scheduler_id or job.scheduler_id
    identity = PodIdentity(job_id=job.job_id, scheduler_id=scheduler_id, key=job.key,
                           annotations=naming.pod_annotations(job_id=job.job_id, scheduler_id=scheduler_id,
                                                              key=job.key))
    return Intent(ref=ref, identity=identity, state=state, details=details, note=note)
