"""The watcher's state in Redis: its lease, its position, its pods' states, its ledger reads.

Per watched scope (a namespace, or ``_all``) the watcher keeps, under
``podq:watcher:<scope>:*`` (see :func:`podq.broker.store.keys.watcher_key`):

* ``lease``: the current fencing token (``<fence>:<holder>``), with a TTL (``lua/lease.lua``);
* ``fence``: the counter tokens are numbered from;
* ``rv``: the resourceVersion its results are published up to;
* ``states``: a hash, pod ``namespace/name`` → the watcher's record of what it published.

``rv`` and ``states`` change only inside the publish script, together with the
results, and only while the token is the lease's current value.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import redis

from podq.broker.queue.envelopes import dispatch_control
from podq.broker.store import keys
from podq.shared.records import ControlRecord
from podq.shared.states import ControlOp, LedgerState

from .ledger import Ledger, LedgerEntry
from .publish import DEFAULT_LEDGER_TTL, Fence, Item, Position, Publisher
from .scripts import register

_BRIEF_FIELDS = ("state", "terminal_state", "scheduler_id", "namespace", "pod_name", "updated_at")


@dataclass(frozen=True, slots=True)
class LedgerBrief:
    """The ledger fields the watcher's reconciler and relist need."""

    job_id: str
    state: LedgerState | None
    terminal_state: str | None
    scheduler_id: str | None
    namespace: str | None
    pod_name: str | None
    updated_at: float | None


def _brief(job_id: str, values: Sequence[bytes | None]) -> LedgerBrief | None:
    if not any(values):
        return None
    text = [value.decode() if value is not None else None for value in values]
    state, terminal, scheduler_id, namespace, pod_name, updated = text
    try:
        ledger_state = LedgerState(state) if state else None
    except ValueError:
        ledger_state = None
    return LedgerBrief(job_id=job_id, state=ledger_state, terminal_state=terminal or None,
                       scheduler_id=scheduler_id, namespace=namespace or None, pod_name=pod_name,
                       updated_at=float(updated) if updated else None)


# Completions travel several to a Celery message: they come in bursts, one per finished job.
COMPLETIONS_PER_MESSAGE = 8


class WatchStore:
    """Everything the watcher reads from and writes to Redis."""

    def __init__(self, client: redis.Redis, *, ledger_ttl: float = DEFAULT_LEDGER_TTL) -> None:
        self._client = client
        self._lease = register(client, "lease")
        self._publisher = Publisher(client, ledger_ttl=ledger_ttl)
        self._ledger = Ledger(client)

    # -- lease ---------------------------------------------------------------------------------
    def hold(self, scope: str, *, holder: str, token: str | None, ttl: float) -> tuple[bool, str]:
        """Acquire the scope's lease, or renew ``token``; (held, current token)."""
        held, current = self._lease(keys=[keys.watcher_key(scope, "lease"), keys.watcher_key(scope, "fence")],
                                    args=["hold", holder, token or "", int(ttl * 1000)])
        return bool(held), current.decode() if isinstance(current, bytes) else current

    def release(self, scope: str, *, token: str) -> bool:
        """Give the lease up (only if ``token`` still holds it)."""
        released, _ = self._lease(keys=[keys.watcher_key(scope, "lease"), keys.watcher_key(scope, "fence")],
                                  args=["release", "", token, 0])
        return bool(released)

    def lease_holder(self, scope: str) -> str | None:
        value = self._client.get(keys.watcher_key(scope, "lease"))
        return value.decode() if value is not None else None

    # -- position and states -------------------------------------------------------------------
    def position(self, scope: str) -> str | None:
        value = self._client.get(keys.watcher_key(scope, "rv"))
        return value.decode() if value else None

    def states(self, scope: str, *, page: int = 5000) -> dict[str, bytes]:
        """Every stored pod state of ``scope`` (read in pages, not one huge reply)."""
        return {field.decode(): value
                for field, value in self._client.hscan_iter(keys.watcher_key(scope, "states"), count=page)}

    def publish(self, scope: str, items: Sequence[Item], *, token: str, position: str | None) -> list[str]:
        """One publish-script call: the lease check, the results, the pod states and the position."""
        return self._publisher.publish_items(
            items, fence=Fence(key=keys.watcher_key(scope, "lease"), token=token),
            position=Position(key=keys.watcher_key(scope, "rv"), value=position) if position else None,
            states_key=keys.watcher_key(scope, "states"))

    # -- ledger --------------------------------------------------------------------------------
    def briefs(self, job_ids: Sequence[str]) -> dict[str, LedgerBrief]:
        """The ledger brief of each job that has a ledger entry."""
        pipe = self._client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job_key(job_id), _BRIEF_FIELDS)
        found = {}
        for job_id, values in zip(job_ids, pipe.execute()):
            brief = _brief(job_id, values)
            if brief is not None:
                found[job_id] = brief
        return found

    def scan_live_jobs(self, *, page: int = 1000) -> Iterator[list[LedgerBrief]]:
        """Every job without a terminal result yet, a page of briefs at a time.

        These are the members of the schedulers' job sets (a terminal result removes a job
        from its set), so a pass costs what is in flight, not the whole retained ledger.
        """
        batch: list[str] = []
        for scheduler_id in sorted(self._client.smembers(keys.SCHEDULERS_SET)):
            for job_id in self._client.sscan_iter(keys.scheduler_jobs_key(scheduler_id.decode()), count=page):
                batch.append(job_id.decode())
                if len(batch) >= page:
                    yield list(self.briefs(batch).values())
                    batch = []
        if batch:
            yield list(self.briefs(batch).values())

    def ledger_entry(self, job_id: str) -> LedgerEntry | None:
        return self._ledger.get(job_id)

    # -- control requests ----------------------------------------------------------------------
    def request_completions(self, jobs: Sequence[tuple[str, str]]) -> None:
        """These jobs' terminal results are durable: let the workers apply the completion policy.

        ``jobs`` holds ``(job_id, scheduler_id)`` pairs; one LPUSH for the lot (the same
        control records :func:`podq.broker.control.operations.request_completion` sends one at a time).
        """
        now = time.time()
        records = [ControlRecord(op=ControlOp.COMPLETE, scheduler_id=scheduler_id, job_id=job_id,
                                 requested_at=now).encode() for job_id, scheduler_id in jobs]
        if records:
            dispatch_control(self._client, records, per_message=COMPLETIONS_PER_MESSAGE)

    def request_delete(self, *, job_id: str, scheduler_id: str, reason: str) -> None:
        """Ask the workers to delete a job's pod now (the ledger is not changed)."""
        record = ControlRecord(op=ControlOp.DELETE, scheduler_id=scheduler_id, job_id=job_id,
                               delete_options={"gracePeriodSeconds": 0}, reason=reason,
                               requested_at=time.time())
        dispatch_control(self._client, [record.encode()])
