"""What a finished job's ledger hash keeps for the retention (``PODQ_REDIS_LEDGER_TTL``).

Once a job's terminal result is latched (``lua/publish.lua``), its hash is rewritten with
only these fields (``lua/lib/compact.lua``): the job record, the claim, the pending and
running bookkeeping and the per-step times go, since nothing reads them after the end.
The unread result itself stays whole in the scheduler's results stream until it is read
and trimmed (adoption moves it from there, not from the ledger). docs/architecture.md
("A finished job's ledger entry") says the same; docs/scaling.md gives the bytes.
"""
from __future__ import annotations

RETAINED_FIELDS: tuple[str, ...] = (
    "state",           # every script's first read: a resubmission is turned away (accept.lua), a
                       # late create or claim finds the job over (created.lua, claim.lua)
    "terminal_state",  # the latch: later results are dropped, job status and the completion policy read it
    "scheduler_id",    # the owner: control records are checked against it, job status reads its stream
    "namespace",       # with pod_name and cluster: the completion policy's pod (it may run after the end)
    "pod_name",
    "cluster",
    "launch",          # which launch the pod was (a relaunch of an ended job's pod is refused as stale)
    "uid",             # the pod that ended the job: a late create of the same pod is not counted twice
    "undone_uid",      # a pod created after the end, removed again: counted once
    "deliveries",      # audit: how many create deliveries the job took
    "accepted_at",     # audit: when intake recorded it
    "updated_at",      # audit: when it ended
    "last_entry",      # job status shows the result from its stream while the stream still holds it
    "refused",         # why intake refused it (job status, and a refused job stays refused)
    "adopted_from",    # audit: the scheduler it was adopted from
)
"""The fields a finished job keeps; every other field is dropped when the job ends."""

WHOLE_SECONDS: tuple[str, ...] = ("accepted_at", "updated_at")
"""Retained times kept in whole seconds (Redis stores an integer in 5 bytes, a float's text in 18)."""
