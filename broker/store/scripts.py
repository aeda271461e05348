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

A server that lost its script cache (a restart, a Sentinel failover to a replica, ``SCRIPT
FLUSH``) answers a script's ``EVALSHA`` with NOSCRIPT. Every script call survives it, once:

* a call on the client (``scripts.claim(keys=…)``): redis-py's ``Script`` loads the script and
  sends it again;
* a call queued on a pipeline (``scripts.accept(…, client=pipe)``): :class:`ReloadingPipeline`
  (the pipeline of every client :func:`~.connection.connect` builds) sends each call that got
  NOSCRIPT again after ``SCRIPT LOAD``, in one more round trip, with the pipeline's ``WAIT`` if one
  followed it; no other command of the pipeline runs twice. It sends no ``SCRIPT EXISTS`` first
  (redis-py's own pipeline does, one round trip on every call): a missing script costs the extra
  round trip only when it is missing;
* a call inside a transaction (``MULTI``): the script's text goes with it (``EVAL``), since a
  command inside a transaction cannot be sent again on its own.
"""
from __future__ import annotations

import re
import weakref
from functools import cache
from importlib import resources
from typing import Iterable

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from podq.shared.states import (CREATABLE_STATES, LIVE_LEDGER_STATES, MAX_PENDING_RESULTS, TERMINAL_STATES,
                                LedgerState, State)

from . import counters, keys
from .retained import DEFAULTS, DERIVED, RETAINED_NAMES, WHOLE_SECONDS

NAMES = ("accept", "adopt", "alive", "beat", "budget", "claim", "created", "delay", "dispatch_waiting", "giveback",
         "hold", "lease", "orphans", "publish", "ratelimit", "refuse", "relaunch", "release", "released", "restore",
         "results_group", "transition", "trim", "wait")
_PLACEHOLDER = re.compile(r"\$\(([a-z_.:]+)\)")


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _set(members: Iterable[State | LedgerState], kind: type) -> str:
    """A Lua set literal, in the enum's order (so the rendered text is stable)."""
    chosen = set(members)
    return "{" + ", ".join(f"[{_quoted(member.value)}] = true" for member in kind if member in chosen) + "}"


def _table(mapping: dict[str, str]) -> str:
    """A Lua table literal of text to text, in the mapping's order."""
    return "{" + ", ".join(f"[{_quoted(name)}] = {_quoted(value)}" for name, value in mapping.items()) + "}"


def constants() -> dict[str, str]:
    """Each placeholder a script may use, and the Lua text it becomes."""
    values = {
        "terminal_states": _set(TERMINAL_STATES, State),
        "creatable_states": _set(CREATABLE_STATES, LedgerState),
        "live_ledger_states": _set(LIVE_LEDGER_STATES, LedgerState),
        "record_field": _quoted(keys.RECORD_FIELD),
        "max_pending_results": str(MAX_PENDING_RESULTS),
        "retained_names": _table(RETAINED_NAMES),
        "retained_defaults": _table(DEFAULTS),
        "retained_derived": _table(DERIVED),
        "whole_seconds": "{" + ", ".join(f"[{_quoted(name)}] = true" for name in WHOLE_SECONDS) + "}",
    }
    values.update({f"retained.{name}": _quoted(short) for name, short in RETAINED_NAMES.items()})
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
    budget: Script
    claim: Script
    created: Script
    delay: Script
    dispatch_waiting: Script
    giveback: Script
    hold: Script
    lease: Script
    orphans: Script
    publish: Script
    ratelimit: Script
    refuse: Script
    relaunch: Script
    release: Script
    released: Script
    restore: Script
    results_group: Script
    transition: Script
    trim: Script
    wait: Script

    def __init__(self, client: redis.Redis) -> None:
        if not isinstance(client.pipeline(transaction=False), ReloadingPipeline):
            raise TypeError(f"podq's scripts need a client from connect() (its pipelines send a script again "
                            f"after NOSCRIPT); got a {type(client).__name__}")
        for name in NAMES:
            setattr(self, name, client.register_script(render(name)))


_BY_CLIENT: "weakref.WeakKeyDictionary[redis.Redis, Scripts]" = weakref.WeakKeyDictionary()


def scripts_for(client: redis.Redis) -> Scripts:
    """The client's scripts, registered on its first use."""
    found = _BY_CLIENT.get(client)
    if found is None:
        found = _BY_CLIENT[client] = Scripts(client)
    return found


class ReloadingPipeline(Pipeline):
    """A pipeline whose script calls survive a server without its script cache (see the module's text).

    A call that got NOSCRIPT is sent again after the pipeline's other commands have run (they
    are not repeated): a pipeline must not rely on a script running before a later command of
    the same pipeline when the server may lose its scripts (podq's pipelines put their scripts
    last, or only a ``WAIT`` after them, which is sent again with them).
    """

    def load_scripts(self) -> None:
        """Nothing ahead of the call: a NOSCRIPT reply loads the script then (:meth:`execute`)."""

    def execute(self, raise_on_error: bool = True) -> list:
        texts = {script.sha: script.script for script in self.scripts}
        if self.transaction or self.explicit_transaction:
            self.command_stack = [_whole(args, texts, options) for args, options in self.command_stack]
            return super().execute(raise_on_error)
        stack = list(self.command_stack)
        replies = super().execute(raise_on_error=False)
        missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            replies = self._again(stack, replies, missing, texts)
        if raise_on_error:
            self.raise_first_error(stack, replies)
        return replies

    def _again(self, stack: list, replies: list, missing: list[int], texts: dict) -> list:
        """Load the missing scripts and send their calls again (and a WAIT after them), in one round trip."""
        again = [index for index in range(missing[0], len(stack))
                 if index in missing or _name(stack[index][0]) == "WAIT"]
        shas = {stack[index][0][1] for index in missing}
        unknown = shas - texts.keys()
        if unknown:   # an EVALSHA queued by hand, of no registered script: nothing to load
            return replies
        retry = Pipeline(self.connection_pool, self.response_callbacks, False, self.shard_hint)   # once only
        for sha in sorted(shas):
            retry.execute_command("SCRIPT LOAD", texts[sha])
        for index in again:
            args, options = stack[index]
            retry.execute_command(*args, **options)
        answers = retry.execute(raise_on_error=False)
        loaded, answers = answers[:len(shas)], answers[len(shas):]
        refused = next((answer for answer in loaded if isinstance(answer, Exception)), None)
        replies = list(replies)
        for index, answer in zip(again, answers):
            # A script the server would not load: its own error, not a second NOSCRIPT.
            replies[index] = refused if refused is not None and isinstance(answer, NoScriptError) else answer
        return replies


def _name(args: tuple) -> str:
    name = args[0]
    return (name.decode() if isinstance(name, bytes) else str(name)).upper()


def _whole(args: tuple, texts: dict, options: dict) -> tuple:
    """An EVALSHA of a known script as EVAL with its text (for a transaction)."""
    if _name(args) == "EVALSHA" and args[1] in texts:
        return ("EVAL", texts[args[1]], *args[2:]), options
    return args, options
