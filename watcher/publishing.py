"""Turning a scope's intents into one publish-script call, and what follows a terminal result.

Each call carries the scope's lease token (the script refuses it once another
replica holds the lease), the results, the pods' stored records and the
resourceVersion reached, atomically.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

from podq.broker.control.operations import completion_request, delete_request
from podq.broker.control.sender import COMPLETIONS_PER_MESSAGE, ControlSender
from podq.broker.store.connection import Client
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import DEFAULT_LEDGER_TTL, Item, PodState, Publisher
from podq.broker.store.watchstate import WatchStore
from podq.shared import metrics, naming, tracing
from podq.shared.records import KubernetesWatch
from podq.shared.states import LedgerState, Source, State

from .kube import KubePods
from .logtail import ReadTail, add_log_tails
from .relaunch import LaunchPolicy, relaunch
from .tracker import Intent

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Broker:
    """What the watcher uses of the broker: its own storage (lease, position, pod states),
    the ledger, the publish script, and the control sender (completions, deletes)."""

    store: WatchStore
    ledger: Ledger
    publisher: Publisher
    control: ControlSender
    client: Client | None = None       # the create tasks of relaunched jobs (watcher/relaunch.py)

    @classmethod
    def open(cls, client: Client, *, ledger_ttl: float = DEFAULT_LEDGER_TTL, cluster: str | None = None) -> "Broker":
        """``cluster``: the watched cluster as records hold it (None: the default)."""
        return cls(store=WatchStore(client), ledger=Ledger(client, cluster=cluster),
                   publisher=Publisher(client, ledger_ttl=ledger_ttl, cluster=cluster), control=ControlSender(client),
                   client=client)


@dataclass(frozen=True, slots=True)
class Scope:
    """What one list+watch covers: a namespace, or every namespace (``namespace`` None), of one cluster.

    Its ``name`` keys its lease, position and states: the namespace (or ``_all``) in the default
    cluster, as in a single-cluster cell; ``<cluster>:<namespace or _all>`` in any other.
    """

    name: str
    namespace: str | None
    cluster: str | None = None
    """The cluster as records hold it (None: the cell's default)."""
    cluster_name: str | None = None
    """The cluster's name, which results carry (None: not known, only in tests)."""

    ALL = "_all"

    @classmethod
    def of(cls, namespace: str | None, *, cluster: str | None = None, cluster_name: str | None = None) -> "Scope":
        base = namespace or cls.ALL
        return cls(name=base if cluster is None else f"{cluster}:{base}", namespace=namespace, cluster=cluster,
                   cluster_name=cluster_name)

    def covers(self, namespace: str, cluster: str | None = None) -> bool:
        """True for a job in ``namespace`` of ``cluster`` (as records hold it)."""
        return cluster == self.cluster and (self.namespace is None or self.namespace == namespace)


def resolve_ledger(ledger: Ledger, intents: Sequence[Intent]) -> None:
    """A pod gone without a terminal result ends ``revoked`` when the ledger says revoked, else ``lost``."""
    asking = [intent for intent in intents if intent.ledger_decides and intent.state is State.LOST]
    if not asking:
        return
    entries = ledger.entries([intent.identity.job_id for intent in asking])
    for intent in asking:
        entry = entries.get(intent.identity.job_id)
        if entry is not None and entry.state is LedgerState.REVOKED:
            intent.state = State.REVOKED
            intent.details = None


def to_items(intents: Sequence[Intent], *, cluster: str | None = None) -> list[Item]:
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
                                           failure_details=intent.details, pending_reason=intent.pending_reason,
                                           again=intent.again, cluster=cluster)
        pod_state = PodState(field=intent.ref, value=intent.stored) if intent.stored is not None else None
        if result is not None or pod_state is not None:
            items.append(Item(result=result, pod_state=pod_state, pod_uid=intent.uid or ""))
    return items


def publish(broker: Broker, scope: Scope, intents: Sequence[Intent], *, token: str,
            position: str | None, batch_size: int, launches: LaunchPolicy | None = None,
            later: list[Intent] | None = None, read_tail: ReadTail | None = None, tail_lines: int = 0) -> int:
    """Publish ``intents`` (in calls of ``batch_size`` items; the position rides on the last one).
    Launch failures are first launched again where ``launches`` and the ledger allow (relaunch.py);
    the ones to decide later (their create not recorded yet) are added to ``later``. A failure whose
    container started gets its log's last ``tail_lines`` through ``read_tail`` (logtail.py).

    Returns the number of results that reached a stream.
    """
    if launches is not None and any(intent.launch_failure for intent in intents):
        waiting = relaunch(broker, intents, launches)
        if later is not None:
            later.extend(waiting)
    resolve_ledger(broker.ledger, intents)
    if read_tail is not None and tail_lines > 0:
        add_log_tails(intents, read=read_tail, lines=tail_lines)
    items = to_items(intents, cluster=scope.cluster_name)
    if not items and not position:
        return 0
    published = 0
    step = max(1, batch_size)
    starts = list(range(0, len(items), step)) or [0]
    for start in starts:
        last = start == starts[-1]
        checkpoint = broker.store.checkpoint(scope.name, token=token, position=position if last else None)
        batch = items[start:start + step]
        done = broker.publisher.publish_items(batch, checkpoint=checkpoint)
        published += sum(1 for entry in done.entries if entry)
        observe_latencies([item.result for item, entry in zip(batch, done.entries) if entry and item.result],
                          done.submitted_at)
    for intent in intents:
        if intent.state is not None and (intent.state.terminal or intent.note):
            with tracing.about_job(intent.identity.job_id, intent.identity.annotations.get(naming.TRACEPARENT)):
                log.info("job %s pod %s: %s%s", intent.identity.job_id, intent.ref, intent.state.value,
                         f" ({intent.note})" if intent.note else "")
    return published


def observe_latencies(results: Sequence[KubernetesWatch], when: Mapping[str, float]) -> None:
    """Submit → running and submit → terminal, for results that just reached their streams
    (``when``: each job's submission time, as the publish call read it from the ledger)."""
    timed = [result for result in results if result.state is State.RUNNING or result.state.terminal]
    for result in timed:
        with tracing.span(f"podq.{result.state.value}", result.traceparent, job_id=result.job_id):
            pass  # a marker in the job's trace: the pod reached this state
        submitted = when.get(result.job_id)
        if submitted is None:
            continue
        elapsed = max(0.0, result.emitted_at - submitted)
        if result.state is State.RUNNING:
            metrics.SUBMIT_TO_RUNNING.observe(elapsed)
        else:
            metrics.SUBMIT_TO_TERMINAL.labels(result.state.value).observe(elapsed)


def after_publish(broker: Broker, kube: KubePods, intents: Sequence[Intent]) -> None:
    """Ask for the completion policy of ended pods; revoke pods failed by the pending deadline."""
    done = [completion_request(job_id=intent.identity.job_id, scheduler_id=intent.identity.scheduler_id)
            for intent in intents if intent.complete]
    if done:
        broker.control.send(done, per_message=COMPLETIONS_PER_MESSAGE)
    for intent in intents:
        if intent.retire_pod:  # an earlier launch's pod that failed: out of the watch, kept for a look
            kube.label_done(intent.namespace, intent.pod_name)
        if not intent.revoke_pod:
            continue
        # The job is terminal in the ledger already; label the pod so no later event of it counts,
        # then have the workers delete it (the ledger is not changed).
        if kube.label_revoked(intent.namespace, intent.pod_name):
            broker.control.send([delete_request(job_id=intent.identity.job_id,
                                                scheduler_id=intent.identity.scheduler_id,
                                                reason="pending deadline exceeded")])
