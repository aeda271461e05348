"""What a finished job's ledger hash keeps for the retention (``PODQ_REDIS_LEDGER_TTL``), and under which names.

Once a job's terminal result is latched (``lua/publish.lua``), its hash is rewritten with only
these fields (``lua/lib/compact.lua``): the job record, the claim, the pending and running
bookkeeping and the per-step times go, since nothing reads them after the end. The unread
result itself stays whole in the scheduler's results stream until it is read and trimmed
(adoption moves it from there, not from the ledger).

The kept fields are written under one-letter names (:data:`RETAINED_NAMES`; ``state`` keeps
its name, every script's first read), a field at its default (:data:`DEFAULTS`) is left out,
and ``updated_at`` is left out when ``last_entry`` is kept (the entry id's milliseconds are the
end's time): millions of finished jobs are kept for a week, and a field's name is stored in each
of them. A compacted hash is small enough for Redis's listpack encoding, whose integers take
5 bytes. Readers ask for a field by its long name and take the short one when the long one is
absent (``lua/lib/ledger_read.lua``; :meth:`podq.broker.store.ledger.LedgerEntry.decode`).
docs/architecture.md ("A finished job's ledger entry") says the same; docs/scaling.md gives the bytes.
"""
from __future__ import annotations

RETAINED_NAMES: dict[str, str] = {
    "state": "state",           # every script's first read: a resubmission is turned away (accept.lua), a
                                # late create or claim finds the job over (created.lua, claim.lua)
    "terminal_state": "t",      # the latch: later results are dropped, job status and the completion policy read it
    "scheduler_id": "s",        # the owner: control records are checked against it, job status reads its stream
    "namespace": "n",           # with pod_name and cluster: the completion policy's pod (it may run after the end)
    "pod_name": "p",            # a first launch's without its last 16 characters, the job id's (pod_name_of)
    "cluster": "c",
    "launch": "l",              # which launch the pod was (a relaunch of an ended job's pod is refused as stale)
    "uid": "u",                 # the pod that ended the job: a late create of the same pod is not counted twice
    "undone_uid": "v",          # a pod created after the end, removed again: counted once
    "deliveries": "d",          # audit: how many create deliveries the job took
    "accepted_at": "a",         # audit: when intake recorded it
    "updated_at": "w",          # audit: when it ended (only without last_entry, whose id holds that time)
    "last_entry": "e",          # job status shows the result from its stream while the stream still holds it
    "refused": "r",             # why intake refused it (job status, and a refused job stays refused)
    "adopted_from": "o",        # audit: the scheduler it was adopted from
}
"""The fields a finished job keeps, each with its name in the compacted hash; every other field is dropped."""

RETAINED_FIELDS: tuple[str, ...] = tuple(RETAINED_NAMES)
"""The fields a finished job keeps (their long names)."""

WHOLE_SECONDS: tuple[str, ...] = ("accepted_at", "updated_at")
"""Retained times kept in whole seconds (a listpack stores such an integer in 5 bytes, a float's text in 18)."""

DEFAULTS: dict[str, str] = {"deliveries": "0", "launch": "1"}
"""Values a reader assumes for an absent field, so a compacted hash leaves them out."""

DERIVED: dict[str, str] = {"updated_at": "last_entry"}
"""A field left out when the other is kept: the end's time is the milliseconds of the result's entry id."""


def entry_id_seconds(entry_id: str) -> float | None:
    """The time a stream entry id was written (its milliseconds part), in seconds; None if it is not one."""
    millis, _, _ = entry_id.partition("-")
    return int(millis) / 1000 if millis.isdigit() else None


def expand(job_id: str, raw: dict[str, bytes]) -> dict[str, bytes]:
    """A ledger hash's fields under their long names and in full (a compacted hash's short names read as the
    long ones, a long name present wins, as the scripts read it; a shortened pod name is made whole)."""
    full = dict(raw)
    for name, short in RETAINED_NAMES.items():
        if name not in full and short in raw:
            full[name] = raw[short]
    if full.get("pod_name", b"").endswith(b"-"):
        full["pod_name"] = pod_name_of(job_id, full["pod_name"].decode()).encode()
    return full


def pod_name_of(job_id: str, kept: str) -> str:
    """The pod name a compacted hash keeps, whole: a first launch's ends in ``-`` and 16 characters of the job
    id (shared/naming.py's pod_name_for), and the hash keeps it without those 16 (a pod name never ends in
    ``-``, so one that does is such a name)."""
    return kept + job_id[:16] if kept.endswith("-") else kept
