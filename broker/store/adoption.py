"""Adoption's storage: the one atomic step (``lua/adopt.lua``) and the pending-patch bookkeeping."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import redis

from podq.broker.errors import BrokerError

from . import keys
from .scripts import scripts_for


@dataclass(frozen=True, kw_only=True)
class Adoption:
    """What adoption's broker step did."""

    live_jobs: list[str]
    moved_results: int


# The old scheduler's job set is read, then moved in one script call that names each job's
# ledger hash; a job accepted in between makes the script refuse, and the set is read again.
_MAX_ATTEMPTS = 20


def adopt_step(client: redis.Redis, *, old: str, new: str) -> Adoption:
    """Move ``old``'s jobs and unread results to ``new`` in one atomic step (idempotent)."""
    script = scripts_for(client).adopt
    for _ in range(_MAX_ATTEMPTS):
        job_ids = sorted(member.decode() for member in client.smembers(keys.scheduler_jobs_key(old)))
        reply = script(keys=[keys.scheduler_jobs_key(old), keys.scheduler_jobs_key(new),
                             keys.results_stream(old), keys.results_stream(new),
                             keys.adopt_pending_key(old, new), keys.SCHEDULERS_SET,
                             *map(keys.job_key, job_ids)],
                       args=[old, new, repr(time.time()), keys.RESULTS_GROUP, *job_ids])
        if reply != [b"RETRY"]:
            live = [job_id.decode() for job_id in reply[:-2]]
            return Adoption(live_jobs=live, moved_results=int(reply[-1]))
    raise BrokerError(f"adopt {old} -> {new}: its job set kept changing across {_MAX_ATTEMPTS} attempts")


def adopt_pending(client: redis.Redis, *, old: str, new: str) -> list[str]:
    """Jobs of the adoption whose pods are not patched yet."""
    return sorted(member.decode() for member in client.smembers(keys.adopt_pending_key(old, new)))


def adopt_patched(client: redis.Redis, *, old: str, new: str, job_ids: Sequence[str]) -> None:
    if job_ids:
        client.srem(keys.adopt_pending_key(old, new), *job_ids)


def adopt_pass(client: redis.Redis, *, old: str, new: str) -> int:
    """Count one patch pass of an adoption; returns the passes made so far."""
    key = keys.adopt_passes_key(old, new)
    passes = client.incr(key)
    client.expire(key, 7 * 24 * 3600)
    return int(passes)
