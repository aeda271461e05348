"""Every Lua script of podq's data model, rendered from the Python vocabulary and registered once.

The ``.lua`` files beside this module never name a key (every key arrives through
``KEYS[]``, built in :mod:`.keys`) and never spell a state: they say
``$(terminal_states)`` or ``$(state.pending)``, and :func:`render` fills in the
values of the enums in :mod:`podq.shared.states` when the script is loaded. A
placeholder that names nothing fails the load (and the unit tests), so a state
added, renamed or removed in Python reaches every script or stops the build.
``$(include:<name>)`` inserts ``lua/lib/<name>.lua`` (one definition shared by
several scripts, e.g. how a results stream and its group are created).

:func:`scripts_for` gives each client its :class:`Scripts`, built once.
"""
from __future__ import annotations

import re
import weakref
from functools import cache
from importlib import resources
from typing import Iterable

import redis
from redis.commands.core import Script

from podq.shared.states import CREATABLE_STATES, LIVE_LEDGER_STATES, TERMINAL_STATES, LedgerState, State

from . import counters, keys

NAMES = ("accept", "adopt", "alive", "beat", "claim", "created", "delay", "hold", "lease", "orphans", "publish", "ratelimit",
         "refuse", "release", "released", "restore", "results_group", "transition", "trim")
_PLACEHOLDER = re.compile(r"\$\(([a-z_.:]+)\)")


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _set(members: Iterable[State | LedgerState], kind: type) -> str:
    """A Lua set literal, in the enum's order (so the rendered text is stable)."""
    chosen = set(members)
    return "{" + ", ".join(f"[{_quoted(member.value)}] = true" for member in kind if member in chosen) + "}"


def constants() -> dict[str, str]:
    """Each placeholder a script may use, and the Lua text it becomes."""
    values = {
        "terminal_states": _set(TERMINAL_STATES, State),
        "creatable_states": _set(CREATABLE_STATES, LedgerState),
        "live_ledger_states": _set(LIVE_LEDGER_STATES, LedgerState),
        "record_field": _quoted(keys.RECORD_FIELD),
    }
    values.update({f"state.{state.name.lower()}": _quoted(state.value) for state in State})
    values.update({f"ledger.{state.name.lower()}": _quoted(state.value) for state in LedgerState})
    values.update({f"total.{name}": _quoted(field) for name, field in counters.script_names().items()})
    return values


def _lua(path: str) -> str:
    return resources.files(__package__).joinpath("lua", path).read_text(encoding="utf-8")


@cache
def render(name: str) -> str:
    """The text of ``lua/<name>.lua`` with every placeholder filled in; KeyError names an unknown one."""
    values = constants()

    def fill(match: re.Match) -> str:
        word = match.group(1)
        if word.startswith("include:"):
            return _PLACEHOLDER.sub(fill, _lua(f"lib/{word.removeprefix('include:')}.lua"))
        if word not in values:
            raise KeyError(f"lua/{name}.lua: unknown placeholder $({word})")
        return values[word]

    return _PLACEHOLDER.sub(fill, _lua(f"{name}.lua"))


class Scripts:
    """podq's scripts registered on one client (redis-py sends EVALSHA, reloading after a restart)."""

    accept: Script
    adopt: Script
    alive: Script
    beat: Script
    claim: Script
    created: Script
    delay: Script
    hold: Script
    lease: Script
    orphans: Script
    publish: Script
    ratelimit: Script
    refuse: Script
    release: Script
    released: Script
    restore: Script
    results_group: Script
    transition: Script
    trim: Script

    def __init__(self, client: redis.Redis) -> None:
        for name in NAMES:
            setattr(self, name, client.register_script(render(name)))


_BY_CLIENT: "weakref.WeakKeyDictionary[redis.Redis, Scripts]" = weakref.WeakKeyDictionary()


def scripts_for(client: redis.Redis) -> Scripts:
    """The client's scripts, registered on its first use."""
    found = _BY_CLIENT.get(client)
    if found is None:
        found = _BY_CLIENT[client] = Scripts(client)
    return found
