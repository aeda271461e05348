"""Injected faults and latency: rules matched per request (verb, namespace, name), applied before or after it."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
import struct
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from . import errors

log = logging.getLogger(__name__)

VERBS = frozenset({"create", "get", "list", "watch", "patch", "update", "delete", "deletecollection", "*"})
STATUS_ACTIONS = {"403", "410", "429", "500", "503", "quota"}
AFTER_ACTIONS = {"hang", "reset-after"}
WATCH_ACTIONS = {"error-event-410", "error-event-500"}
ACTIONS = frozenset(STATUS_ACTIONS | AFTER_ACTIONS | WATCH_ACTIONS | {"reset"})


@dataclass(slots=True)
class FaultRule:
    """One injected fault. ``action`` is what happens to a request the rule picks:

    * ``"403"``, ``"429"`` (with ``Retry-After``), ``"500"``, ``"503"``: answer with that Status, do nothing else;
    * ``"quota"``: 403 as a ResourceQuota refuses a create (``exceeded quota: ...``);
    * ``"410"``: answer 410 Expired at once (on a watch: the rare direct HTTP 410 instead of an ERROR event);
    * ``"reset"``: drop the connection (TCP reset) before doing anything;
    * ``"hang"``: do the request (a create is stored) and never answer, until released or shutdown;
    * ``"reset-after"``: do the request, then drop the connection instead of answering;
    * ``"error-event-410"`` / ``"error-event-500"`` (watch only): 200, then one ERROR event with that code.
    """

    id: int
    action: str
    verb: str = "*"
    namespace: str | None = None
    name_prefix: str | None = None
    rate: float = 1.0
    count: int | None = None
    retry_after: int = 1
    fired: int = 0

    def picks(self, *, verb: str, namespace: str | None, name: str | None) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.verb != "*" and self.verb != verb:
            return False
        if self.action in WATCH_ACTIONS and verb != "watch":
            return False
        if self.namespace is not None and self.namespace != namespace:
            return False
        if self.name_prefix is not None and not (name or "").startswith(self.name_prefix):
            return False
        return self.rate >= 1.0 or random.random() < self.rate


@dataclass(slots=True)
class Latency:
    """Added latency for a verb: ``seconds`` plus up to ``jitter`` more at random."""

    seconds: float = 0.0
    jitter: float = 0.0
    _held: deque[tuple[float, asyncio.Future[None]]] = field(default_factory=deque, repr=False, compare=False)
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False, compare=False)

    def draw(self) -> float:
        return self.seconds + (random.random() * self.jitter if self.jitter else 0.0)

    async def wait(self) -> None:
        """Hold the request for its latency.

        Without jitter every request waits the same delay, so they fall due in the order they came: they
        queue behind one timer, set for the first one due, instead of a timer each.
        """
        if self.jitter:
            delay = self.draw()
            if delay > 0:
                await asyncio.sleep(delay)
            return
        if self.seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + self.seconds
        future: asyncio.Future[None] = loop.create_future()
        self._held.append((due, future))
        if self._timer is None:
            self._timer = loop.call_at(due, self._release, loop)
        await future

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let every request that is due go, then set the timer for the next one."""
        held = self._held
        now = loop.time()
        while held and held[0][0] <= now:
            _due, future = held.popleft()
            if not future.done():  # a request cancelled meanwhile (its client left) is only dropped
                future.set_result(None)
        self._timer = loop.call_at(held[0][0], self._release, loop) if held else None


def reset_connection(transport: asyncio.BaseTransport | None) -> None:
    """Close the socket with SO_LINGER 0 so the client sees a TCP reset."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]


class Faults:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.latency: dict[str, Latency] = {}
        self._ids = itertools.count(1)
        self.release = asyncio.Event()
        self.hung = 0
        self.requests: dict[str, int] = {}
        """requests seen per verb (every API request passes through ``gate``)"""

    def add(self, **spec: Any) -> FaultRule:
        action = str(spec.get("action", ""))
        if action not in ACTIONS:
            raise errors.bad_request(f"unknown fault action {action!r}; known: {sorted(ACTIONS)}")
        verb = str(spec.get("verb") or "*")
        if verb not in VERBS:
            raise errors.bad_request(f"unknown verb {verb!r}; known: {sorted(VERBS)}")
        count = spec.get("count")
        rule = FaultRule(
            id=next(self._ids),
            action=action,
            verb=verb,
            namespace=spec.get("namespace"),
            name_prefix=spec.get("name_prefix"),
            rate=float(spec.get("rate", 1.0)),
            count=None if count is None else int(count),
            retry_after=int(spec.get("retry_after", 1)),
        )
        self.rules.append(rule)
        log.info("fault rule added: %s", rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()

    def describe(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rules]

    def set_latency(self, verb: str, *, seconds: float, jitter: float = 0.0) -> None:
        if verb not in VERBS:
            raise errors.bad_request(f"unknown verb {verb!r}; known: {sorted(VERBS)}")
        self.latency[verb] = Latency(max(0.0, seconds), max(0.0, jitter))

    def release_hung(self) -> int:
        """Let every hung request go (their connections are then reset); returns how many there were."""
        count = self.hung
        self.release.set()
        self.release = asyncio.Event()
        return count

    async def gate(self, *, verb: str, namespace: str | None, name: str | None, transport: Any) -> str | None:
        """Apply latency and the first rule that picks this request.

        Raises the ApiError of a status action; returns the action to carry out after the request
        (``hang``, ``reset-after``, a watch ERROR event), or None.
        """
        self.requests[verb] = self.requests.get(verb, 0) + 1
        latency = self.latency.get(verb) or self.latency.get("*")
        if latency is not None:
            await latency.wait()
        if not self.rules:
            return None
        for rule in self.rules:
            if not rule.picks(verb=verb, namespace=namespace, name=name):
                continue
            rule.fired += 1
            action = rule.action
            log.info("fault %s fires on %s %s/%s", action, verb, namespace, name)
            if action == "reset":
                reset_connection(transport)
                raise errors.Dropped("injected connection reset")
            if action in STATUS_ACTIONS:
                raise _status_error(action, rule=rule, verb=verb, namespace=namespace, name=name)
            return action
        return None

    async def hang(self, transport: Any) -> None:
        """Never answer: wait until released (or the server stops), then reset the connection."""
        self.hung += 1
        release = self.release
        try:
            await release.wait()
        finally:
            self.hung -= 1
        reset_connection(transport)
        raise errors.Dropped("hung request released")


def _status_error(action: str, *, rule: FaultRule, verb: str, namespace: str | None, name: str | None) -> errors.ApiError:
    if action == "403":
        return errors.forbidden(verb=verb, namespace=namespace, name=name)
    if action == "quota":
        return errors.quota_exceeded(name=name)
    if action == "429":
        return errors.too_many_requests(rule.retry_after)
    if action == "503":
        return errors.service_unavailable(rule.retry_after)
    if action == "410":
        return errors.expired("The resourceVersion for the provided watch is too old." if verb == "watch" else "too old resource version")
    return errors.internal_error()
