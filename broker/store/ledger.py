"""The job ledger: one hash per job, moved only by compare-and-set scripts.

``podq:job:<job_id>`` goes accepted → dispatched → created(uid) → terminal, or
→ revoked. The terminal latch (``terminal_state``) is written only by the publish
script (see :mod:`podq.broker.store.publish`). :class:`LedgerEntry` is the one
reading of that hash: whole (:meth:`Ledger.get`) or only the fields a caller
needs (:meth:`Ledger.entries`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

import redis

from podq.shared.errors import DecodeError
from podq.shared.records import KubernetesJob
from podq.shared.states import CREATABLE_STATES, LedgerState

from . import counters, keys
from .connection import durable
from .retained import RETAINED_NAMES, entry_id_seconds, expand
from .scripts import scripts_for

log = logging.getLogger(__name__)

# The fields the watcher's reconciler and relist read for many jobs at once (no job record).
SUMMARY_FIELDS = ("state", "terminal_state", "scheduler_id", "namespace", "pod_name", "updated_at", "cluster")


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """A job's ledger hash, decoded (fields not read are None).

    A finished job's entry holds only :data:`~.retained.RETAINED_FIELDS`, read from their short
    names (its ``job`` is None, ``last_state`` too: its result is ``terminal_state``; its
    ``updated_at`` is its result entry's time).
    """

    job_id: str
    state: LedgerState | None = None
    scheduler_id: str | None = None
    job: KubernetesJob | None = None
    pod_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    terminal_state: str | None = None
    last_state: str | None = None
    last_entry: str | None = None
    deliveries: int = 0
    launch: int = 1
    accepted_at: float | None = None
    updated_at: float | None = None
    cluster: str | None = None
    """The cluster intake routed the job to; None: the cell's default cluster."""
    refused: str | None = None
    """Why intake refused the job (the message of its ``failed`` result); None for an admitted job."""

    @classmethod
    def decode(cls, job_id: str, fields: Mapping[str | bytes, bytes | None]) -> "LedgerEntry":
        """Read a ledger hash (or some of its fields); raises DecodeError naming the bad field."""
        raw = expand(job_id, {name.decode() if isinstance(name, bytes) else name: value for name, value in fields.items()
                      if value is not None})

        def text(name: str) -> str | None:
            value = raw.get(name)
            return value.decode() if value is not None else None

        def number(name: str) -> float | None:
            value = text(name)
            try:
                return float(value) if value else None
            except ValueError:
                raise DecodeError(f"ledger {job_id}.{name}: {value!r} is not a number") from None

        state = text("state")
        try:
            ledger_state = LedgerState(state) if state else None
        except ValueError:
            raise DecodeError(f"ledger {job_id}.state: {state!r} is not a ledger state") from None
        return cls(job_id=job_id, state=ledger_state, scheduler_id=text("scheduler_id"),
                   job=KubernetesJob.decode(raw["job"]) if "job" in raw else None,
                   pod_name=text("pod_name"), namespace=text("namespace") or None, uid=text("uid"),
                   terminal_state=text("terminal_state") or None, last_state=text("last_state"),
                   last_entry=text("last_entry") or None, deliveries=int(number("deliveries") or 0),
                   launch=int(number("launch") or 1),
                   accepted_at=number("accepted_at"),
                   updated_at=number("updated_at") or entry_id_seconds(text("last_entry") or ""),
                   cluster=text("cluster") or None, refused=text("refused"))


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
    launch: int = 1
    """Which launch of the job a create makes: 1, then one more per relaunch (its pod's name follows it)."""


@dataclass(frozen=True, kw_only=True)
class Lease:
    """What a delivery claims with: its token, how long it may act, the grace after, and its worker.

    ``worker``: the id of the worker process whose liveness record backs the lease (the lease
    is void once that record lapses); "" for a lease that lasts its full term regardless.
    """

    token: str
    seconds: float
    grace: float
    worker: str = ""


def _claim_of(reply) -> Claim:
    state, deliveries, owner, busy, launch = reply
    state = state.decode()
    return Claim(state=LedgerState(state) if state else None, deliveries=int(deliveries),
                 owner=owner.decode() or None, busy=bool(busy), launch=int(launch))


def _transition_args(allowed: Iterable[LedgerState], to: LedgerState,
                     fields: dict[str, str] | None, *, total: str = "") -> list[str]:
    args = [",".join(state.value for state in allowed), to.value, repr(time.time()), total]
    for name, value in (fields or {}).items():
        args.extend((name, value))
    return args


class Ledger:
    """Verbs on the ledger; every state change is one atomic script call."""

    def __init__(self, client: redis.Redis, *, cluster: str | None = None) -> None:
        """``cluster``: the cluster (as records hold it; None: the default) whose in-flight set the
        verbs that move jobs in and out of flight use: a ledger for the jobs of that cluster."""
        self._client = client
        self._scripts = scripts_for(client)
        self.cluster = cluster
        self._inflight = keys.inflight_key(cluster)

    def accept_many(self, jobs: Sequence[tuple[KubernetesJob, str]], *,
                    records: Sequence[bytes] | None = None) -> list[str]:
        """Record ``(job, pod_name)`` pairs in one script call; per job "new" or the state it already had.

        ``records``: each job's encoded record, when the caller has it already (else encoded here).
        """
        if not jobs:
            return []
        records = records if records is not None else [job.encode() for job, _ in jobs]
        job_keys: list[str] = [keys.SCHEDULERS_SET, keys.METRICS_KEY]
        args: list = [repr(time.time())]
        for (job, pod_name), record in zip(jobs, records, strict=True):
            job_keys += (keys.job_key(job.job_id), keys.scheduler_jobs_key(job.scheduler_id))
            args += (job.job_id, job.scheduler_id, record, pod_name, job.namespace or "", repr(job.submitted_at),
                     job.cluster or "")
        pipe = self._client.pipeline(transaction=False)
        self._scripts.accept(keys=job_keys, args=args, client=pipe)
        return [value.decode() for value in durable(self._client, pipe)[0]]

    def transition(self, job_id: str, *, allowed: Iterable[LedgerState], to: LedgerState,
                   fields: dict[str, str] | None = None) -> tuple[bool, str]:
        """Move ``job_id`` to ``to`` if its state is one of ``allowed``; report the outcome."""
        pipe = self._client.pipeline(transaction=False)
        self._scripts.transition(keys=[self._inflight, keys.METRICS_KEY, keys.job_key(job_id)],
                                 args=_transition_args(allowed, to, fields), client=pipe)
        moved, state = durable(self._client, pipe)[0][0]
        return bool(moved), state.decode() if isinstance(state, bytes) else state

    def mark_dispatched(self, job_ids: Sequence[str], *, orphaned_after: float = 30.0) -> None:
        """accepted → dispatched for each job (one script call, in one round trip with the in-flight set);
        the script counts the jobs it moved in the ``dispatched`` total.

        Each job also enters the in-flight set: if it is still waiting for a pod
        ``orphaned_after`` seconds from now with nobody holding it, it counts as orphaned.
        """
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(self._inflight, {job_id: time.time() + orphaned_after for job_id in job_ids})
        self._scripts.transition(keys=[self._inflight, keys.METRICS_KEY, *map(keys.job_key, job_ids)],
                                 args=_transition_args((LedgerState.ACCEPTED,), LedgerState.DISPATCHED, None,
                                                       total=counters.DISPATCHED),
                                 client=pipe)
        durable(self._client, pipe)

    def claim_job(self, job_id: str, lease: Lease) -> Claim:
        """Take ``job_id`` for one delivery (see ``lua/claim.lua``): state, deliveries, owner, busy."""
        return self.claim_jobs([job_id], lease)[0]

    def claim_jobs(self, job_ids: Sequence[str], lease: Lease) -> list[Claim]:
        """:meth:`claim_job` for several jobs of one delivery in one script call."""
        if not job_ids:
            return []
        replies = self._scripts.claim(keys=[self._inflight, keys.WORKERS_ZSET, *map(keys.job_key, job_ids)],
                                      args=[lease.token, lease.seconds, lease.grace, lease.worker])
        return [_claim_of(reply) for reply in replies]

    def orphans(self, *, limit: int, again_after: float) -> list[bytes]:
        """Records of this ledger's cluster's jobs waiting for a pod with no live delivery
        (``lua/orphans.lua``).

        The due members of the in-flight set are read first, then checked and taken in one
        script call that names each one's ledger hash (a member due by the server's clock).
        """
        clusters = (self.cluster,)
        queues = [keys.celery_queue(cluster) for cluster in clusters]
        pipe = self._client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        if all(pipe.execute()):
            return []
        seconds, micros = self._client.time()
        due = [member.decode() for member in self._client.zrangebyscore(
            self._inflight, "-inf", seconds + micros / 1e6, start=0, num=limit)]
        if not due:
            return []
        return self._scripts.orphans(keys=[self._inflight, *queues, *map(keys.job_key, due)],
                                     args=[again_after, len(queues), *(cluster or "" for cluster in clusters), *due])

    def mark_created(self, job_id: str, *, uid: str) -> tuple[bool, str]:
        """accepted/dispatched → created, recording the pod's uid."""
        return self.mark_created_many([(job_id, uid)])[0]

    def mark_created_many(self, pods: Sequence[tuple[str, str]]) -> list[tuple[bool, str]]:
        """:meth:`mark_created` for ``(job_id, uid)`` pairs in one script call (``lua/created.lua``).

        Per pair, like :meth:`transition`: (True, "created") when the job moved, else (False, its state).
        """
        if not pods:
            return []
        pipe = self._client.pipeline(transaction=False)
        self._scripts.created(keys=[self._inflight, keys.METRICS_KEY, *(keys.job_key(job_id) for job_id, _ in pods)],
                              args=[repr(time.time()), *(uid for _, uid in pods)], client=pipe)
        return [(bool(moved), state.decode() if isinstance(state, bytes) else state)
                for moved, state in durable(self._client, pipe)[0]]

    def relaunch(self, job_id: str, *, pod_name: str, launch: int, next_pod_name: str, max_launches: int,
                 orphaned_after: float = 30.0) -> tuple[str, int | str | None]:
        """Move a ``created`` job whose pod ``pod_name`` (its ``launch``) failed before it started back to
        dispatched for launch + 1 under ``next_pod_name`` (``lua/relaunch.lua``), at most ``max_launches``
        launches in all. Returns ("RELAUNCHED", next launch), ("STALE", None) when that pod was relaunched
        already, ("WAIT", None) while the job's create is not recorded yet, or ("NO", why)."""
        pipe = self._client.pipeline(transaction=False)
        self._scripts.relaunch(keys=[self._inflight, keys.job_key(job_id)],
                               args=[pod_name, launch, next_pod_name, max_launches, repr(time.time()),
                                     orphaned_after], client=pipe)
        reply = durable(self._client, pipe)[0]
        tag = reply[0].decode()
        if tag == "RELAUNCHED":
            return tag, int(reply[1])
        return tag, reply[1].decode() if len(reply) > 1 else None

    def revoke(self, job_id: str) -> tuple[bool, str]:
        """Any live state → revoked (terminal jobs stay terminal)."""
        return self.transition(job_id, allowed=(*CREATABLE_STATES, LedgerState.CREATED), to=LedgerState.REVOKED)

    def get(self, job_id: str) -> LedgerEntry | None:
        """The job's whole ledger entry, or None when the ledger does not know it."""
        raw = self._client.hgetall(keys.job_key(job_id))
        return LedgerEntry.decode(job_id, raw) if raw else None

    def refuse(self, refusals: Sequence[tuple[str, str, str]]) -> list[bool]:
        """Record refused jobs ``(job_id, scheduler_id, message)`` as ended (``lua/refuse.lua``).

        Per job, True when its failed result is to be published; False for a job the ledger
        had admitted (a refused duplicate of it must not end it).
        """
        now = repr(time.time())
        pipe = self._client.pipeline(transaction=False)
        for job_id, scheduler_id, message in refusals:
            self._scripts.refuse(keys=[keys.job_key(job_id)], args=[job_id, scheduler_id, message, now],
                                 client=pipe)
        return [bool(recorded) for recorded in pipe.execute()]

    def entries(self, job_ids: Sequence[str], *, fields: Sequence[str] = SUMMARY_FIELDS) -> dict[str, LedgerEntry]:
        """``fields`` of each job the ledger knows, in one pipelined round trip.

        An entry that cannot be read is logged and left out, so one damaged hash does not
        stop a pass over many.
        """
        asked = [*fields, *(RETAINED_NAMES[name] for name in fields if RETAINED_NAMES.get(name, name) != name)]
        if "updated_at" in fields and "last_entry" not in fields:
            asked.append(RETAINED_NAMES["last_entry"])   # a compacted hash's end time (retained.py)
        pipe = self._client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job_key(job_id), asked)
        found = {}
        for job_id, values in zip(job_ids, pipe.execute()):
            if not any(values):
                continue
            try:
                found[job_id] = LedgerEntry.decode(job_id, dict(zip(asked, values)))
            except DecodeError as exc:
                log.error("%s; left out", exc)
        return found

    def scan_live(self, *, page: int = 1000) -> Iterator[list[LedgerEntry]]:
        """Every job without a terminal result yet, a page of summaries at a time.

        These are the members of the schedulers' job sets (a terminal result removes a job
        from its set), so a pass costs what is in flight, not the whole retained ledger.
        """
        batch: list[str] = []
        for scheduler_id in sorted(self._client.smembers(keys.SCHEDULERS_SET)):
            for job_id in self._client.sscan_iter(keys.scheduler_jobs_key(scheduler_id.decode()), count=page):
                batch.append(job_id.decode())
                if len(batch) >= page:
                    yield list(self.entries(batch).values())
                    batch = []
        if batch:
            yield list(self.entries(batch).values())
