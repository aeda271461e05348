"""Running totals kept in Redis (fields of ``podq:metrics``): the exact figures `podq status` shows.

Each total is counted by the script that records the fact it counts, in the same atomic call, so a
process that dies at any moment can neither lose a count nor make one twice:

* ``accepted``: a job recorded in the ledger for the first time (``lua/accept.lua``);
* ``dispatched``: a job moved accepted → dispatched (``lua/transition.lua``, asked by intake);
* ``created``: a pod the ledger learned of, counted once by its uid — the worker's created step
  (``lua/created.lua``, which also counts a pod created after its job ended, removed again), or a
  terminal result that names the pod before the worker's answer came back (``lua/publish.lua``);
* ``ended:<state>``: a job's terminal result, latched (``lua/publish.lua``).

Prometheus counters, by contrast, live in each process and die with it (docs/operations.md, "Metrics").
The trim script keeps its own fields here too (``trim_unread:<stream>``).
"""
from __future__ import annotations

import redis

from podq.shared.states import TERMINAL_STATES, State

from . import keys

ACCEPTED = "accepted"
DISPATCHED = "dispatched"
CREATED = "created"
ENDED_PREFIX = "ended:"


def ended(state: State) -> str:
    """The field counting jobs whose terminal result was ``state``."""
    return f"{ENDED_PREFIX}{state.value}"


def script_names() -> dict[str, str]:
    """The totals the scripts count, as their ``$(total.<name>)`` placeholders (broker/store/scripts.py)."""
    return {"accepted": ACCEPTED, "dispatched": DISPATCHED, "created": CREATED, "ended_prefix": ENDED_PREFIX}


def totals(client: redis.Redis) -> dict[str, int]:
    """Every running total (the trim counters too), by field name."""
    return {name.decode(): int(value) for name, value in client.hgetall(keys.METRICS_KEY).items()}


def ended_totals(figures: dict[str, int]) -> dict[str, int]:
    """``{terminal state: jobs}`` from :func:`totals`, every terminal state present (0 when none yet)."""
    return {state.value: figures.get(ended(state), 0) for state in sorted(TERMINAL_STATES, key=lambda s: s.value)}
