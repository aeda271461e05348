"""The job ledger: one hash per job, moved only by compare-and-set scripts.

``podq:job:<job_id>`` goes accepted → dispatched → created(uid) → terminal, or
→ revoked. The terminal latch (``terminal_state``) is written only by the publish
script (see :mod:`podq.broker.store.publish`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import redis

from podq.broker.store import keys
from podq.shared.records import KubernetesJob
from podq.shared.states import LedgerState

from .scripts import register

CREATABLE = (LedgerState.ACCEPTED, LedgerState.DISPATCHED)


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """A job's ledger hash, decoded."""

    job_id: str
    state: LedgerState | None
    scheduler_id: str | None
    job: KubernetesJob | None
    pod_name: str | None
    namespace: str | None
    uid: str | None
    terminal_state: str | None
    last_state: str | None
    deliveries: int
    accepted_at: float | None
    updated_at: float | None

    @classmethod
    def from_hash(cls, job_id: str, raw: dict[bytes, bytes]) -> "LedgerEntry":
        text = {k.decode(): v for k, v in raw.items()}

        def get(name: str) -> str | None:
            value = text.get(name)
            return value.decode() if value is not None else None

        def number(name: str) -> float | None:
            value = get(name)
            return float(value) if value else None

        state = get("state")
        return cls(job_id=job_id, state=LedgerState(state) if state else None,
                   scheduler_id=get("scheduler_id"),
                   job=KubernetesJob.decode(text["job"]) if "job" in text else None,
                   pod_name=get("pod_name"), namespace=get("namespace"), uid=get("uid"),
                   terminal_state=get("terminal_state"), last_state=get("last_state"),
                   deliveries=int(get("deliveries") or 0),
                   accepted_at=number("accepted_at"), updated_at=number("updated_at"))


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A create delivery's view of its job: state, deliveries counted, current owner.

    ``busy``: another delivery of the same job holds its lease right now, so this one
    must not create (it counted no delivery).
    """

    state: LedgerState | None
    deliveries: int
    owner: str | None
    busy: bool = False


@dataclass(frozen=True, kw_only=True)
class Lease:
    """What a delivery claims with: its token, how long it may act, and the grace after."""

    token: str
    seconds: float
    grace: float


def _claim_of(reply) -> Claim:
    state, deliveries, owner, busy = reply
    state = state.decode()
    return Claim(state=LedgerState(state) if state else None, deliveries=int(deliveries),
                 owner=owner.decode() or None, busy=bool(busy))


def _transition_args(allowed: Iterable[LedgerState], to: LedgerState,
                     fields: dict[str, str] | None) -> list[str]:
    args = [",".join(state.value for state in allowed), to.value, repr(time.time())]
    for name, value in (fields or {}).items():
        args.extend((name, value))
    return args


class Ledger:
    """Verbs on the ledger; every state change is one atomic script call."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._accept = register(client, "accept")
        self._transition = register(client, "transition")
        self._claim = register(client, "claim")
        self._orphans = register(client, "orphans")

    def accept_many(self, jobs: Sequence[tuple[KubernetesJob, str]]) -> list[str]:
        """Record ``(job, pod_name)`` pairs; per job "new" or the state it already had."""
        now = repr(time.time())
        pipe = self._client.pipeline(transaction=False)
        for job, pod_name in jobs:
            self._accept(keys=[keys.job_key(job.job_id), keys.scheduler_jobs_key(job.scheduler_id)],
                         args=[job.job_id, job.scheduler_id, job.encode(), pod_name,
                               job.namespace or "", now], client=pipe)
        return [value.decode() for value in pipe.execute()]

    def transition(self, job_id: str, *, allowed: Iterable[LedgerState], to: LedgerState,
                   fields: dict[str, str] | None = None) -> tuple[bool, str]:
        """Move ``job_id`` to ``to`` if its state is one of ``allowed``; report the outcome."""
        moved, state = self._transition(keys=[keys.job_key(job_id)],
                                        args=_transition_args(allowed, to, fields))
        return bool(moved), state.decode() if isinstance(state, bytes) else state

    def mark_dispatched(self, job_ids: Sequence[str], *, orphaned_after: float = 30.0) -> None:
        """accepted → dispatched for each job (one pipelined round trip).

        Each job also enters the in-flight set: if it is still waiting for a pod
        ``orphaned_after`` seconds from now with nobody holding it, it counts as orphaned.
        """
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(keys.INFLIGHT_ZSET, {job_id: time.time() + orphaned_after for job_id in job_ids})
        args = _transition_args((LedgerState.ACCEPTED,), LedgerState.DISPATCHED, None)
        for job_id in job_ids:
            self._transition(keys=[keys.job_key(job_id)], args=args, client=pipe)
        pipe.execute()

    def claim_job(self, job_id: str, lease: Lease) -> Claim:
        """Take ``job_id`` for one delivery (see ``lua/claim.lua``): state, deliveries, owner, busy."""
        return self.claim_jobs([job_id], lease)[0]

    def claim_jobs(self, job_ids: Sequence[str], lease: Lease) -> list[Claim]:
        """:meth:`claim_job` for several jobs of one delivery in one pipelined round trip."""
        pipe = self._client.pipeline(transaction=False)
        for job_id in job_ids:
            self._claim(keys=[keys.job_key(job_id), keys.INFLIGHT_ZSET],
                        args=[lease.token, lease.seconds, lease.grace], client=pipe)
        return [_claim_of(reply) for reply in pipe.execute()]

    def orphans(self, *, queue: str, limit: int, again_after: float) -> list[bytes]:
        """Records of jobs waiting for a pod with no live delivery (``lua/orphans.lua``)."""
        return self._orphans(keys=[keys.INFLIGHT_ZSET, queue], args=[limit, again_after])

    def mark_created(self, job_id: str, *, uid: str) -> tuple[bool, str]:
        """accepted/dispatched → created, recording the pod's uid."""
        return self.transition(job_id, allowed=CREATABLE, to=LedgerState.CREATED, fields={"uid": uid})

    def revoke(self, job_id: str) -> tuple[bool, str]:
        """Any live state → revoked (terminal jobs stay terminal)."""
        return self.transition(job_id, allowed=(*CREATABLE, LedgerState.CREATED), to=LedgerState.REVOKED)

    def get(self, job_id: str) -> LedgerEntry | None:
        raw = self._client.hgetall(keys.job_key(job_id))
        return LedgerEntry.from_hash(job_id, raw) if raw else None
