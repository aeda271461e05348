"""The whole system's figures as Redis holds them: what `podq status` shows and intake and the watcher
export as gauges.

One call, :func:`overview`, reads everything with a handful of pipelined commands, so
a status view or a gauge refresh costs a few milliseconds whatever the backlog.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from podq.shared.states import PROCESS_ROLES

from . import keys
from .ratelimit import BudgetState, budget_states
from .waiting import waiting_by_scheduler
from .stats import StreamStats, all_stats

RECENT_DEAD = 5


@dataclass(frozen=True, kw_only=True)
class SchedulerFigures:
    scheduler: str
    length: int
    pending: int
    lag: int
    oldest_pending_age: float | None
    """Seconds since the oldest delivered-but-unacknowledged result was added; None: nothing pending."""
    dead: int
    delivered: int = 0
    """Results delivered to the scheduler's group so far (grows while its consumers read)."""


@dataclass(frozen=True, kw_only=True)
class ScopeFigures:
    scope: str
    leader: str | None
    """The leading replica's token (``<fence>:<replica>``) while it renews its lease; None: no replica
    leads the scope (none holds the lease, or its holder stopped renewing: a few renewal periods
    without one, long before the lease runs out)."""
    lease_holder: str | None
    """The token the lease still names (a silent leader's lease lasts until its TTL runs out)."""
    lease_ttl: float | None
    """Seconds left on the lease."""



@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    entry_id: str
    at: float
    stream: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Overview:
    at: float
    queue_messages: int
    """Celery messages in every cluster's queue."""
    in_flight: int
    delayed: int
    jobs: StreamStats
    jobs_lag: int
    """Entries of podq:jobs intake has not read yet."""
    jobs_pending: int
    """Entries of podq:jobs intake read and has not acknowledged."""
    dead: int
    schedulers: tuple[SchedulerFigures, ...]
    scopes: tuple[ScopeFigures, ...]
    recent_dead: tuple[DeadLetter, ...] = field(default=())
    live: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per role (intake, worker, watcher), the processes whose own liveness record has not lapsed."""
    budgets: dict[str, BudgetState] = field(default_factory=dict)
    """Each cluster's create budget, by cluster name (empty until a worker first reports to one)."""
    waiting: dict[str, dict[str, int]] = field(default_factory=dict)
    """Jobs waiting for each cluster's create capacity, by cluster and scheduler (only non-empty lines)."""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_time(entry_id: str) -> float:
    return int(entry_id.split("-", 1)[0]) / 1000.0


def _oldest_pending_ages(client: redis.Redis, streams: list[str], now: float) -> dict[str, float]:
    """Per results stream, the age of its group's oldest unacknowledged entry (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xpending(stream, keys.RESULTS_GROUP)
    return {stream: max(0.0, now - _entry_time(_text(summary["min"])))
            for stream, summary in zip(streams, pipe.execute()) if summary and summary.get("pending")}


def scopes(client: redis.Redis) -> list[str]:
    """Every watcher scope that ever had a leader."""
    return sorted(_text(scope) for scope in client.smembers(keys.WATCHER_SCOPES_SET))


def clusters(client: redis.Redis) -> list[str]:
    """Every cluster podq has a create budget or waiting lines for."""
    return sorted(_text(name) for name in client.smembers(keys.CLUSTERS_SET))


def overview(client: redis.Redis, *, recent_dead: int = RECENT_DEAD) -> Overview:
    now = time.time()
    stats = all_stats(client)
    jobs = stats[0]
    schedulers = []
    ages = _oldest_pending_ages(client, [stream.stream for stream in stats[2:]
                                         if any(g.name == keys.RESULTS_GROUP and g.pending for g in stream.groups)], now)
    for stream in stats[2:]:
        scheduler = stream.stream[len(keys.results_stream("")):]
        group = next((g for g in stream.groups if g.name == keys.RESULTS_GROUP), None)
        schedulers.append(SchedulerFigures(
            scheduler=scheduler, length=stream.length, pending=group.pending if group else 0,
            lag=group.lag if group else stream.length,
            oldest_pending_age=ages.get(stream.stream),
            dead=stream.dead or 0, delivered=(group.entries_read or 0) if group else 0))
    scope_names = scopes(client)
    seconds, micros = client.time()
    server_now = seconds + micros / 1e6
    pipe = client.pipeline(transaction=False)
    pipe.llen(keys.CELERY_QUEUE)
    pipe.zcard(keys.INFLIGHT_ZSET)
    pipe.zcard(keys.DELAYED_ZSET)
    pipe.xrevrange(keys.DEAD_STREAM, count=recent_dead)
    for role in PROCESS_ROLES:
        pipe.zrangebyscore(keys.liveness_key(role), server_now, "+inf")
    for scope in scope_names:
        pipe.get(keys.watcher_key(scope, "lease"))
        pipe.pttl(keys.watcher_key(scope, "lease"))
        pipe.get(keys.watcher_key(scope, "alive"))
    replies = pipe.execute()
    queue_messages, in_flight, delayed, dead_entries = replies[:4]
    # The other clusters' Celery queues, in-flight and delayed sets (the default's are counted above).
    named = [name for name in clusters(client) if keys.inflight_key(name) != keys.INFLIGHT_ZSET]
    if named:
        extra = client.pipeline(transaction=False)
        for name in named:
            extra.llen(keys.celery_queue(name))
            extra.zcard(keys.inflight_key(name))
            extra.zcard(keys.delayed_key(name))
        counts = extra.execute()
        queue_messages += sum(counts[0::3])
        in_flight += sum(counts[1::3])
        delayed += sum(counts[2::3])
    live = {role: tuple(sorted(_text(member) for member in members))
            for role, members in zip(PROCESS_ROLES, replies[4:4 + len(PROCESS_ROLES)])}
    scope_figures = []
    for index, scope in enumerate(scope_names):
        token, ttl_ms, alive = replies[4 + len(PROCESS_ROLES) + 3 * index: 7 + len(PROCESS_ROLES) + 3 * index]
        holder = _text(token) if token else None
        scope_figures.append(ScopeFigures(
            scope=scope, leader=holder if holder is not None and alive and _text(alive) == holder else None,
            lease_holder=holder, lease_ttl=ttl_ms / 1000.0 if token and ttl_ms and ttl_ms > 0 else None))
    recent = tuple(DeadLetter(entry_id=_text(entry_id), at=_entry_time(_text(entry_id)),
                              stream=_text(fields.get(b"stream", b"")), reason=_text(fields.get(b"reason", b"")))
                   for entry_id, fields in dead_entries)
    intake = next((group for group in jobs.groups if group.name == keys.INTAKE_GROUP), None)
    return Overview(at=now, queue_messages=int(queue_messages), in_flight=int(in_flight), delayed=int(delayed),
                    jobs=jobs, jobs_lag=intake.lag if intake else jobs.length,
                    jobs_pending=intake.pending if intake else 0, dead=jobs.dead or 0,
                    schedulers=tuple(schedulers), scopes=tuple(scope_figures), recent_dead=recent, live=live,
                    budgets=budget_states(client),
                    waiting={cluster: lines for cluster in clusters(client)
                             if (lines := waiting_by_scheduler(client, cluster))})
