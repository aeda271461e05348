"""Turning a scope's intents into one publish-script call, and what follows a terminal result.

Each call carries the scope's lease token (the script refuses it once another
replica holds the lease), the results, the pods' stored records and the
resourceVersion reached, atomically.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

from podq.broker.store.publish import Item, PodState
from podq.broker.store.watchstate import WatchStore
from podq.shared.records import KubernetesWatch
from podq.shared.states import LedgerState, Source, State

from .kube import KubePods
from .tracker import Intent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scope:
    """What one list+watch covers: a namespace, or every namespace (``namespace`` None)."""

    name: str
    namespace: str | None

    ALL = "_all"

    @classmethod
    def of(cls, namespace: str | None) -> "Scope":
        return cls(name=namespace or cls.ALL, namespace=namespace)

    def covers(self, namespace: str) -> bool:
        return self.namespace is None or self.namespace == namespace


def resolve_ledger(store: WatchStore, intents: Sequence[Intent]) -> None:
    """A pod gone without a terminal result ends ``revoked`` when the ledger says revoked, else ``lost``."""
    asking = [intent for intent in intents if intent.ledger_decides and intent.state is State.LOST]
    if not asking:
        return
    briefs = store.briefs([intent.identity.job_id for intent in asking])
    for intent in asking:
        brief = briefs.get(intent.identity.job_id)
        if brief is not None and brief.state is LedgerState.REVOKED:
            intent.state = State.REVOKED
            intent.details = None


def to_items(intents: Sequence[Intent]) -> list[Item]:
    items = []
    for intent in intents:
        result = None
        if intent.state is not None:
            identity = intent.identity
            result = KubernetesWatch.build(job_id=identity.job_id, scheduler_id=identity.scheduler_id,
                                           key=identity.key, source=Source.WATCHER, state=intent.state,
                                           pod_name=intent.pod_name, namespace=intent.namespace,
                                           annotations=identity.annotations,
                                           resource_version=intent.resource_version,
                                           failure_details=intent.details)
        pod_state = PodState(field=intent.ref, value=intent.stored) if intent.stored is not None else None
        if result is not None or pod_state is not None:
            items.append(Item(result=result, pod_state=pod_state))
    return items


def publish(store: WatchStore, scope: Scope, intents: Sequence[Intent], *, token: str,
            position: str | None, batch_size: int) -> int:
    """Publish ``intents`` (in calls of ``batch_size`` items; the position rides on the last one).

    Returns the number of results that reached a stream.
    """
    resolve_ledger(store, intents)
    items = to_items(intents)
    if not items and not position:
        return 0
    published = 0
    step = max(1, batch_size)
    starts = list(range(0, len(items), step)) or [0]
    for start in starts:
        last = start == starts[-1]
        entries = store.publish(scope.name, items[start:start + step], token=token,
                                position=position if last else None)
        published += sum(1 for entry in entries if entry)
    for intent in intents:
        if intent.state is not None and (intent.state.terminal or intent.note):
            log.info("job %s pod %s: %s%s", intent.identity.job_id, intent.ref, intent.state.value,
                     f" ({intent.note})" if intent.note else "")
    return published


def after_publish(store: WatchStore, kube: KubePods, intents: Sequence[Intent]) -> None:
    """Ask for the completion policy of ended pods; revoke pods failed by the pending deadline."""
    done = [(intent.identity.job_id, intent.identity.scheduler_id) for intent in intents if intent.complete]
    if done:
        store.request_completions(done)
    for intent in intents:
        if not intent.revoke_pod:
            continue
        # The job is terminal in the ledger already; label the pod so no later event of it counts,
        # then have the workers delete it (the ledger is not changed).
        if kube.label_revoked(intent.namespace, intent.pod_name):
            store.request_delete(job_id=intent.identity.job_id, scheduler_id=intent.identity.scheduler_id,
                                 reason="pending deadline exceeded")
