"""What the watcher has published per pod, and what an event makes it publish next.

The :class:`Tracker` is the in-memory copy of a scope's state hash (loaded once
when the replica becomes leader). :meth:`Tracker.apply` turns a classified event
into :class:`Intent`\\ s: a result to publish and/or the pod's new stored record.
The rules: ``running`` at most once, after a ``pending`` (a pod first seen
Running gets its ``pending`` first); ``pending`` first when the pod is first seen,
then again each time its pending reason changes (:func:`.classify.why_pending`),
at most one per ``reason_interval`` seconds per pod: changes in between are held
and the latest is published when the interval ends (:meth:`Tracker.held_reasons`);
nothing after a terminal result; a pod that leaves the watch is forgotten. Pure
logic, no I/O.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from typing import Iterable

import orjson

from podq.shared import naming
from podq.shared.records import FailureDetails, PendingReason, TaskKey
from podq.shared.states import State

from .classify import Verdict, deadline_verdict, why_pending
from .events import EventType, PodIdentity, PodView
from .notices import Notice

FORGET = b""
LAST_NOTICES = 5          # Events kept per pod for the failure details of a job that never ran
EARLY_KEPT = 10_000       # pods whose Events came before the pod itself (their lists are dropped oldest first)


@dataclass(slots=True)
class PodRecord:
    """One pod as the watcher knows it: the last state it published and who the pod is."""

    state: State | None
    identity: PodIdentity
    pending_since: float | None = None
    last_pending: PodView | None = None  # the latest Pending view, for the deadline's reason
    reason: str | None = None            # fingerprint of the pending reason last published (memory only)
    reason_at: float = 0.0               # when it was published
    status_reason: str | None = None     # fingerprint of the reason its status gave last
    held: tuple[PendingReason, str, str | None] | None = None  # a newer reason, its event id part and rv
    notices: list[Notice] = field(default_factory=list)  # its last Kubernetes Events (memory only)

    def encode(self) -> bytes:
        key = self.identity.key
        items = [self.state.value if self.state else "", self.identity.job_id, self.identity.scheduler_id,
                 key.dag_id, key.task_id, key.run_id, key.try_number, key.map_index, self.pending_since]
        if key.launch_id is not None:
            items.append(key.launch_id)
        return orjson.dumps(items)

    @classmethod
    def decode(cls, raw: bytes) -> "PodRecord":
        # A tenth item is the key's launch id, when it has one.
        state, job_id, scheduler_id, dag_id, task_id, run_id, try_number, map_index, since, *launch = orjson.loads(raw)
        key = TaskKey(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number, map_index=map_index,
                      launch_id=launch[0] if launch else None)
        annotations = naming.pod_annotations(job_id=job_id, scheduler_id=scheduler_id, key=key)
        return cls(state=State(state) if state else None, pending_since=since,
                   identity=PodIdentity(job_id=job_id, scheduler_id=scheduler_id, key=key, annotations=annotations))


@dataclass(slots=True)
class Intent:
    """One thing to do for a pod in the next publish call."""

    ref: str
    identity: PodIdentity
    state: State | None = None              # the result to publish, if any
    details: FailureDetails | None = None
    stored: bytes | None = None             # the pod's new stored record; FORGET drops it; None: unchanged
    resource_version: str | None = None
    ledger_decides: bool = False            # lost, unless the ledger says revoked
    complete: bool = False                  # ask for the completion policy once published
    revoke_pod: bool = False                # label the pod revoked and delete it once published
    uid: str | None = None                  # the pod's uid, when the event carried it
    note: str = ""
    pending_reason: PendingReason | None = None
    again: str | None = None                # a later pending of the job: what tells it apart (its rv)
    launch_failure: bool = False            # ended before it started: may be launched again (relaunch.py)
    retire_pod: bool = False                # label the pod done once published (an earlier launch's pod)
    decide_by: float | None = None          # a launch failure waiting for its create's record: until when

    @property
    def namespace(self) -> str:
        return self.ref.split("/", 1)[0]

    @property
    def pod_name(self) -> str:
        return self.ref.split("/", 1)[1]


@dataclass
class Tracker:
    records: dict[str, PodRecord] = field(default_factory=dict)
    # (pending_since, ref) of every record created Pending, oldest first: the pending-deadline sweep
    # looks at the overdue ones only, not at every pod (tens of thousands can wait for a node at once).
    # An entry whose pod moved on or was replaced is dropped when it comes up.
    _pending: list[tuple[float, str]] = field(default_factory=list, repr=False)
    reason_interval: float = 2.0
    _held: set[str] = field(default_factory=set, repr=False)   # refs whose record holds a newer reason
    _early: dict[str, list[Notice]] = field(default_factory=dict, repr=False)  # Events of pods not seen yet

    def __post_init__(self) -> None:
        self._pending = [(record.pending_since, ref) for ref, record in self.records.items()
                         if record.state is State.PENDING and record.pending_since is not None]
        heapq.heapify(self._pending)

    @classmethod
    def from_stored(cls, stored: dict[str, bytes], *, reason_interval: float = 2.0) -> "Tracker":
        return cls({ref: PodRecord.decode(raw) for ref, raw in stored.items() if raw},
                   reason_interval=reason_interval)

    def __len__(self) -> int:
        return len(self.records)

    def knows(self, ref: str) -> bool:
        return ref in self.records

    def apply(self, kind: EventType, pod: PodView, verdict: Verdict, *, now: float) -> list[Intent]:
        """Update the pod's record for one classified event; what to publish."""
        ref = pod.ref
        record = self.records.get(ref)
        identity = pod.identity if pod.identity is not None else (record.identity if record else None)
        if identity is None:
            return []
        previous = record.state if record else None
        rv = pod.resource_version
        if previous is not None and previous.terminal:
            return [self._forget(ref, identity, rv)] if verdict.gone else []
        state = verdict.state
        if state is None:
            return [self._forget(ref, identity, rv)] if verdict.gone and record else []
        if state is State.PENDING:
            why = why_pending(pod)
            if record is None:
                record = PodRecord(state=State.PENDING, identity=identity,
                                   pending_since=pod.created_at or now, last_pending=pod,
                                   reason=why.fingerprint() if why else None, reason_at=now,
                                   status_reason=why.fingerprint() if why else None,
                                   notices=self._early.pop(ref, []))
                self.records[ref] = record
                heapq.heappush(self._pending, (record.pending_since, ref))
                first = Intent(ref=ref, identity=identity, state=State.PENDING, stored=record.encode(),
                               resource_version=rv, pending_reason=why)
                telling = [notice for notice in record.notices if notice.telling]
                if telling:  # Events that came before the pod: the newest is its next reason
                    self._consider(ref, record, telling[-1].pending_reason(), rv=None, now=now,
                                   again=f"event-{telling[-1].resource_version or f'{now:.6f}'}")
                return [first]
            if previous is not State.PENDING:
                return []
            record.last_pending = pod
            if why is None or why.fingerprint() == record.status_reason:
                return []  # the status says nothing new (an Event may have said more since)
            record.status_reason = why.fingerprint()
            return self._consider(ref, record, why, again=rv or f"{now:.6f}", rv=rv, now=now)
        if state is State.RUNNING:
            if previous is State.RUNNING:
                return []
            intents = []
            if previous is None:
                intents.append(Intent(ref=ref, identity=identity, state=State.PENDING, resource_version=rv))
            record = PodRecord(state=State.RUNNING, identity=identity,
                               notices=record.notices if record is not None else self._early.pop(ref, []))
            self.records[ref] = record
            intents.append(Intent(ref=ref, identity=identity, state=State.RUNNING, stored=record.encode(),
                                  resource_version=rv))
            return intents
        return [self._terminal(ref, identity, verdict, rv=rv, uid=pod.uid, before=record)]

    def _consider(self, ref: str, record: PodRecord, why: PendingReason, *, again: str, rv: str | None,
                  now: float) -> list[Intent]:
        """A later ``pending`` for the new reason ``why``: now, or held until the interval ends."""
        if why.fingerprint() == record.reason:
            record.held = None
            return []
        if now - record.reason_at < self.reason_interval:
            record.held = (why, again, rv)
            self._held.add(ref)
            return []
        return [self._reason(ref, record, why, again=again, rv=rv, now=now)]

    def _reason(self, ref: str, record: PodRecord, why: PendingReason, *, again: str, rv: str | None,
                now: float) -> Intent:
        """A later ``pending`` of the pod, for its new reason ``why``."""
        record.reason, record.reason_at, record.held = why.fingerprint(), now, None
        return Intent(ref=ref, identity=record.identity, state=State.PENDING, resource_version=rv,
                      pending_reason=why, again=again)

    def noted(self, notice: Notice, *, now: float) -> list[Intent]:
        """Keep a Kubernetes Event about a pod; a telling one about a Pending pod may be a new reason."""
        record = self.records.get(notice.ref)
        if record is None:
            if notice.ref not in self._early and len(self._early) >= EARLY_KEPT:
                self._early.pop(next(iter(self._early)))
            _keep(self._early.setdefault(notice.ref, []), notice)
            return []
        _keep(record.notices, notice)
        if record.state is not State.PENDING or not notice.telling:
            return []
        return self._consider(notice.ref, record, notice.pending_reason(),
                              again=f"event-{notice.resource_version or f'{now:.6f}'}", rv=None, now=now)

    def held_reasons(self, *, now: float) -> list[Intent]:
        """The held reason of every Pending pod whose interval has ended (called about once a second)."""
        intents = []
        for ref in list(self._held):
            record = self.records.get(ref)
            if record is None or record.state is not State.PENDING or record.held is None:
                self._held.discard(ref)
            elif now - record.reason_at >= self.reason_interval:
                why, again, rv = record.held
                intents.append(self._reason(ref, record, why, again=again, rv=rv, now=now))
                self._held.discard(ref)
        return intents

    def _terminal(self, ref: str, identity: PodIdentity, verdict: Verdict, *, rv: str | None,
                  revoke_pod: bool = False, uid: str | None = None, before: PodRecord | None = None) -> Intent:
        details = verdict.details
        if details is not None and before is not None and before.notices and before.state is State.PENDING:
            # A job that never ran: the pod's last Events say what happened to its launch.
            details = replace(details, events=tuple(notice.line() for notice in before.notices))
        self._early.pop(ref, None)
        if verdict.gone:
            self.records.pop(ref, None)
            stored = FORGET
        else:
            record = PodRecord(state=verdict.state, identity=identity)
            self.records[ref] = record
            stored = record.encode()
        return Intent(ref=ref, identity=identity, state=verdict.state, details=details, stored=stored,
                      resource_version=rv, ledger_decides=verdict.ledger_decides,
                      complete=not verdict.gone and not revoke_pod, revoke_pod=revoke_pod, note=verdict.note,
                      uid=uid, launch_failure=verdict.launch_failure and not revoke_pod
                      and (before is None or before.state is State.PENDING))

    def _forget(self, ref: str, identity: PodIdentity, rv: str | None) -> Intent:
        self.records.pop(ref, None)
        return Intent(ref=ref, identity=identity, stored=FORGET, resource_version=rv)

    def overdue(self, *, now: float, deadline: float) -> list[Intent]:
        """Fail every pod Pending longer than ``deadline`` seconds (then it is revoked)."""
        if deadline <= 0:
            return []
        intents = []
        while self._pending and self._pending[0][0] <= now - deadline:
            since, ref = heapq.heappop(self._pending)
            record = self.records.get(ref)
            if record is None or record.state is not State.PENDING or record.pending_since != since:
                continue  # it moved on, or its ref names another pod now
            if record.last_pending is not None and record.last_pending.deleting:
                continue  # on its way out: its deletion ends it
            waited = now - since
            view = record.last_pending
            verdict = deadline_verdict(view, waited=waited, deadline=deadline) if view is not None else Verdict(
                State.FAILED, FailureDetails(pod_status="Pending", reason="PendingDeadlineExceeded",
                                             message=f"Pending for {waited:.0f} s (deadline {deadline:.0f} s)"),
                note="pending deadline exceeded")
            intents.append(self._terminal(ref, record.identity, verdict, rv=None, revoke_pod=True,
                                          uid=view.uid if view is not None else None, before=record))
        return intents

    def vanished(self, present: Iterable[str]) -> list[Intent]:
        """After a relist: every known pod missing from it. Non-terminal ones end ``lost`` (or revoked)."""
        missing = set(self.records).difference(present)
        intents = []
        for ref in sorted(missing):
            record = self.records.pop(ref)
            if record.state is not None and record.state.terminal:
                intents.append(Intent(ref=ref, identity=record.identity, stored=FORGET))
                continue
            details = FailureDetails(pod_status=(record.last_pending.phase if record.last_pending else None),
                                     reason="PodVanished",
                                     message="the pod disappeared while the watcher was not watching",
                                     events=tuple(n.line() for n in record.notices) or None)
            intents.append(Intent(ref=ref, identity=record.identity, state=State.LOST, details=details,
                                  stored=FORGET, ledger_decides=True, note="vanished"))
        return intents


def _keep(notices: list[Notice], notice: Notice) -> None:
    """Add ``notice`` as the newest of the last ``LAST_NOTICES``; a recount of one kept replaces it."""
    for index, kept in enumerate(notices):
        if kept.same == notice.same:
            del notices[index]
            break
    notices.append(notice)
    del notices[:-LAST_NOTICES]
