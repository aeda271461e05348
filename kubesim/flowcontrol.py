"""kubesim's model of the API server's limit: API Priority and Fairness (APF) for mutating requests.

Off unless ``LimitSettings.enabled``. One limited priority level takes every mutating API request
(POST, PUT, PATCH, DELETE); reads and watches are never queued (only labelled with the level's headers)
and the admin routes pass untouched. A request that finds a
free seat and nobody waiting executes at once; otherwise it joins one of the level's queues: its flow
(the caller's identity, ``access.identity``) is shuffle-sharded onto a hand of ``hand_size`` queues and
the request joins the shortest of them. Seats freed are handed to the queues in turn (round robin over
the non-empty queues: fair queuing when every request costs one seat), so two flows that both keep
requests waiting get about half each. A request whose queue is full, or that waited ``queue_wait``
seconds, is answered 429 as kube-apiserver answers it: ``Too many requests, please try again later.`` as
text, ``Retry-After`` (1 s, doubled while drops go on, as the dropped-requests tracker of recent
kube-apiserver releases does; or pinned by ``retry_after``), and the ``X-Kubernetes-PF-*`` headers.

The rate: an executing request holds its seat until its turn to complete comes, one every ``1/rate``
seconds (``Pace``), then runs (the handler, any injected latency included) and answers. So the level
completes at most ``rate`` requests per second, whatever their number, and while ``seats`` >= rate ×
the handler's own time it completes exactly that many when it is loaded: a benchmark can say "this
kubesim accepts C creates/s". Latency grows as the seats and then the queues fill.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .access import identity
from .settings import LimitSettings

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FLOW_SCHEMA = "service-accounts"
PRIORITY_LEVEL = "workload-low"
FLOW_SCHEMA_UID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubesim/flowschemas/{FLOW_SCHEMA}"))
PRIORITY_LEVEL_UID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubesim/prioritylevelconfigurations/{PRIORITY_LEVEL}"))
PF_HEADERS = {  # as Go's net/http writes the names (canonical case)
    "X-Kubernetes-Pf-Flowschema-Uid": FLOW_SCHEMA_UID,
    "X-Kubernetes-Pf-Prioritylevel-Uid": PRIORITY_LEVEL_UID,
}
TOO_MANY = "Too many requests, please try again later.\n"
MAX_RETRY_AFTER = 32
TIMER_SLACK = 0.001
"""uvloop's timers have millisecond resolution and may fire up to that early: what is due that soon goes now
(else the timer would be set again and again for the remaining fraction)"""
_IDENTITY_CACHE = 10_000

WAITING, DISPATCHED, GONE = 0, 1, 2


@dataclass(slots=True)
class FlowStats:
    """One flow's counters: requests that got a seat, were refused at once, timed out in a queue; now waiting/executing."""

    flow: str
    hand: tuple[int, ...] = ()
    """its queues (dealt on first need)"""
    dispatched: int = 0
    rejected: int = 0
    timed_out: int = 0
    waiting: int = 0
    executing: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"dispatched": self.dispatched, "rejected": self.rejected, "timedOut": self.timed_out,
                "waiting": self.waiting, "executing": self.executing}


class _Waiter:
    __slots__ = ("stats", "queue", "future", "state", "seq")

    def __init__(self, stats: FlowStats, queue: int, future: asyncio.Future[bool], seq: int) -> None:
        self.stats = stats
        self.queue = queue
        self.future = future
        self.state = WAITING
        self.seq = seq


class RetryAfter:
    """A level's Retry-After, as kube-apiserver's dropped-requests tracker computes it.

    Starts at 1 s. When a drop opens a new second, the drops of the last ``value`` seconds before it are
    counted: at least 3 × value (and value seconds since the last rise) doubles it, up to 32; fewer than
    value lowers it by one. Nothing changes while nothing is dropped.
    """

    def __init__(self) -> None:
        self.value = 1
        self._history: deque[tuple[int, int]] = deque()
        self._second: int | None = None
        self._count = 0
        self._raised_at = 0

    def record(self, second: int) -> None:
        if second == self._second:
            self._count += 1
            return
        if self._second is not None:
            self._history.append((self._second, self._count))
            while self._history and self._second - self._history[0][0] > MAX_RETRY_AFTER:
                self._history.popleft()
        self._second, self._count = second, 1
        value = self.value
        dropped = 0
        for at, count in reversed(self._history):
            if second - at > value:
                break
            dropped += count
        if second - self._raised_at >= value and dropped >= 3 * value:
            self.value = min(value * 2, MAX_RETRY_AFTER)
            self._raised_at = second
        elif dropped < value and value > 1:
            self.value = value - 1


class Pace:
    """At most one completion per ``interval`` seconds: each caller is given the next free moment and held
    until then, behind one timer (the moments only grow)."""

    def __init__(self) -> None:
        self.interval = 0.0
        self._next = 0.0
        self._held: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self) -> None:
        if not self.interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        moment = max(now, self._next)
        self._next = moment + self.interval
        if moment <= now:
            return
        future: asyncio.Future[None] = loop.create_future()
        self._held.append((moment, future))
        if self._timer is None:
            self._timer = loop.call_at(moment, self._release, loop)
        await future

    def set_rate(self, rate: float) -> None:
        """Change the rate; callers already held get new moments at the new rate, from now."""
        self.interval = 1.0 / rate if rate > 0 else 0.0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, deque()
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not held:  # the last caller went at most one old interval ago: the next one waits the new one at most
            self._next = min(self._next, now + self.interval)
            return
        self._next = now
        for _moment, future in held:
            if future.done():
                continue
            if not self.interval:
                future.set_result(None)
                continue
            self._held.append((self._next, future))
            self._next += self.interval
        if self._held:
            self._timer = loop.call_at(self._held[0][0], self._release, loop)

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        held = self._held
        now = loop.time() + TIMER_SLACK
        while held and held[0][0] <= now:
            _moment, future = held.popleft()
            if not future.done():
                future.set_result(None)
        self._timer = loop.call_at(held[0][0], self._release, loop) if held else None


def deal(hash_value: int, *, deck: int, hand: int) -> tuple[int, ...]:
    """The queues of a flow's hand: kube-apiserver's shuffle-sharding dealer (hand distinct cards of deck)."""
    remainders = []
    for i in range(hand):
        hash_value, remainder = divmod(hash_value, deck - i)
        remainders.append(remainder)
    cards = []
    for i, card in enumerate(remainders):
        for j in range(i, 0, -1):
            if card >= remainders[j - 1]:
                card += 1
        cards.append(card)
    return tuple(cards)


class FlowControl:
    """The limited priority level: seats, queues, pace and counters. Lives on the server's event loop."""

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.executing = 0
        self.waiting = 0
        self.dispatched = 0
        self.rejected = 0
        self.timed_out = 0
        self.flows: dict[str, FlowStats] = {}
        self.pace = Pace()
        self.retry = RetryAfter()
        self._identities: dict[str, str] = {}
        self._queues: list[deque[_Waiter]] = []
        self._lengths: list[int] = []
        self._in_turn: list[bool] = []
        self._turns: deque[int] = deque()
        self._deadlines: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._build_queues()
        self.pace.interval = 1.0 / settings.rate if settings.enabled and settings.rate > 0 else 0.0

    # -- the request path ----------------------------------------------------------------------
    async def serve(self, request: web.Request, answer: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Admit ``request`` (or answer 429), hold it until its completion time, run ``answer``, free the seat."""
        stats = self._stats_of(request)
        if not await self._admit(stats):
            return self._too_many()
        try:
            await self.pace.wait()
            response = await answer()
        finally:
            self._release(stats)
        return self.label(response)

    def label(self, response: web.StreamResponse) -> web.StreamResponse:
        """Add the PF headers while the model is on (reads are labelled with the level too, though never queued)."""
        if self.settings.enabled and not response.prepared:
            response.headers.update(PF_HEADERS)
        return response

    def _stats_of(self, request: web.Request) -> FlowStats:
        authorization = request.headers.get("Authorization")
        flow = self._identities.get(authorization) if authorization else None
        if flow is None:
            transport = request.transport
            peercert = transport.get_extra_info("peercert") if transport is not None and not authorization else None
            flow = identity(authorization, peercert)
            if authorization:
                if len(self._identities) >= _IDENTITY_CACHE:
                    self._identities.clear()
                self._identities[authorization] = flow
        stats = self.flows.get(flow)
        if stats is None:
            stats = self.flows[flow] = FlowStats(flow)
        return stats

    async def _admit(self, stats: FlowStats) -> bool:
        settings = self.settings
        if self.executing < settings.effective_seats() and not self.waiting:
            self._take(stats)
            return True
        queue = self._shortest(stats)
        if queue is None:
            stats.rejected += 1
            self.rejected += 1
            self._dropped()
            return False
        loop = asyncio.get_running_loop()
        waiter = _Waiter(stats, queue, loop.create_future(), next(self._seq))
        self._queues[queue].append(waiter)
        self._lengths[queue] += 1
        self.waiting += 1
        stats.waiting += 1
        if not self._in_turn[queue]:
            self._in_turn[queue] = True
            self._turns.append(queue)
        deadline = loop.time() + settings.queue_wait
        heapq.heappush(self._deadlines, (deadline, waiter.seq, waiter))
        if self._deadlines[0][2] is waiter:
            self._arm(loop)
        self._dispatch()
        try:
            return await waiter.future
        except asyncio.CancelledError:  # the client went away
            if waiter.state == DISPATCHED:
                self._release(stats)
            elif waiter.state == WAITING:
                self._leave(waiter)
            raise

    def _shortest(self, stats: FlowStats) -> int | None:
        """The shortest queue of the flow's hand, or None when it is full."""
        limit = self.settings.queue_length
        if limit <= 0:
            return None
        hand = stats.hand or self._deal(stats)
        lengths = self._lengths
        queue = min(hand, key=lengths.__getitem__)
        return queue if lengths[queue] < limit else None

    def _take(self, stats: FlowStats) -> None:
        self.executing += 1
        self.dispatched += 1
        stats.executing += 1
        stats.dispatched += 1

    def _release(self, stats: FlowStats) -> None:
        self.executing -= 1
        stats.executing -= 1
        if self.waiting:
            self._dispatch()

    def _dispatch(self) -> None:
        """Hand free seats to the waiting requests, one queue after the other."""
        seats = self.settings.effective_seats() if self.settings.enabled else None
        turns, lengths, queues = self._turns, self._lengths, self._queues
        while turns and (seats is None or self.executing < seats):
            queue = turns.popleft()
            if not lengths[queue]:
                queues[queue].clear()
                self._in_turn[queue] = False
                continue
            line = queues[queue]
            waiter = line.popleft()
            while waiter.state != WAITING:
                waiter = line.popleft()
            lengths[queue] -= 1
            if lengths[queue]:
                turns.append(queue)
            else:
                line.clear()
                self._in_turn[queue] = False
            self.waiting -= 1
            waiter.stats.waiting -= 1
            waiter.state = DISPATCHED
            self._take(waiter.stats)
            waiter.future.set_result(True)

    def _leave(self, waiter: _Waiter) -> None:
        waiter.state = GONE
        self._lengths[waiter.queue] -= 1
        self.waiting -= 1
        waiter.stats.waiting -= 1

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set the one timer for the earliest deadline of a request still waiting."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][2].state != WAITING:
            heapq.heappop(deadlines)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines:
            self._timer = loop.call_at(deadlines[0][0], self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        deadlines = self._deadlines
        now = loop.time() + TIMER_SLACK
        while deadlines and deadlines[0][0] <= now:
            waiter = heapq.heappop(deadlines)[2]
            if waiter.state != WAITING:
                continue
            self._leave(waiter)
            waiter.stats.timed_out += 1
            self.timed_out += 1
            self._dropped()
            waiter.future.set_result(False)
        self._arm(loop)

    def _dropped(self) -> None:
        self.retry.record(int(asyncio.get_running_loop().time()))

    def _too_many(self) -> web.Response:
        retry_after = self.settings.retry_after or self.retry.value
        return web.Response(status=429, text=TOO_MANY,
                            headers={"Retry-After": str(retry_after), "X-Content-Type-Options": "nosniff", **PF_HEADERS})

    # -- run-time changes and state ----------------------------------------------------------------
    def apply(self, values: dict[str, Any]) -> None:
        """Change the settings (ValueError names a bad one). Seats, queues and the rate take effect for the
        requests already waiting too; a new ``queue_wait`` for those that queue from now on."""
        before = (self.settings.queues, self.settings.hand_size)
        self.settings.update(values)
        settings = self.settings
        if (settings.queues, settings.hand_size) != before:
            self._requeue()
        self.pace.set_rate(settings.rate if settings.enabled else 0.0)
        self._dispatch()  # more seats, or off: every waiting request goes now
        if self.waiting:
            self._arm(asyncio.get_running_loop())
        log.info("API limit %s", self.settings.as_dict())

    def _build_queues(self) -> None:
        count = self.settings.queues
        self._queues = [deque() for _ in range(count)]
        self._lengths = [0] * count
        self._in_turn = [False] * count
        self._turns = deque()
        for stats in self.flows.values():
            stats.hand = ()

    def _deal(self, stats: FlowStats) -> tuple[int, ...]:
        digest = int.from_bytes(hashlib.blake2b(stats.flow.encode(), digest_size=16).digest(), "big")
        stats.hand = deal(digest, deck=len(self._queues), hand=self.settings.hand_size)
        return stats.hand

    def _requeue(self) -> None:
        """New queue shapes: the waiting requests keep their order and move to their flows' new hands."""
        waiting = sorted((w for line in self._queues for w in line if w.state == WAITING), key=lambda w: w.seq)
        self._build_queues()
        for waiter in waiting:
            hand = waiter.stats.hand or self._deal(waiter.stats)
            queue = min(hand, key=self._lengths.__getitem__)
            waiter.queue = queue
            self._queues[queue].append(waiter)
            self._lengths[queue] += 1
            if not self._in_turn[queue]:
                self._in_turn[queue] = True
                self._turns.append(queue)

    def describe(self) -> dict[str, Any]:
        """Settings, the level's state and every flow's counters (admin ``GET /_kubesim/limit``)."""
        return {
            "settings": self.settings.as_dict(),
            "seats": self.settings.effective_seats(),
            "flowSchema": {"name": FLOW_SCHEMA, "uid": FLOW_SCHEMA_UID},
            "priorityLevel": {"name": PRIORITY_LEVEL, "uid": PRIORITY_LEVEL_UID},
            "executing": self.executing,
            "waiting": self.waiting,
            "dispatched": self.dispatched,
            "rejected": self.rejected,
            "timedOut": self.timed_out,
            "retryAfter": self.settings.retry_after or self.retry.value,
            "flows": {flow: {**stats.as_dict(), "queues": list(stats.hand or self._deal(stats))} for flow, stats in self.flows.items()},
        }
