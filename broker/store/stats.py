"""Backlog figures of podq's streams: per group, entries pending (delivered, not acked) and lag."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from podq.broker.store import keys

from .trim import trimmed_unread

_LAG_SCAN_LIMIT = 1_000_000


@dataclass(frozen=True, kw_only=True)
class ConsumerStats:
    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True, kw_only=True)
class GroupStats:
    name: str
    pending: int
    """Entries delivered to a consumer of the group and not acknowledged yet."""
    lag: int
    """Entries in the stream not yet delivered to any consumer of the group."""
    last_delivered: str
    consumers: tuple[ConsumerStats, ...]
    entries_read: int | None = None
    """Entries delivered to the group since it was created (the server's ``entries-read``; None when it
    cannot tell): it only grows while the group's consumers read."""


@dataclass(frozen=True, kw_only=True)
class StreamStats:
    stream: str
    length: int
    groups: tuple[GroupStats, ...]
    dead: int | None = None
    """Length of the stream's dead-letter stream, when it has one."""
    trimmed_unread: int = 0
    """Entries the hard cap removed before every group acknowledged them."""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lag(client: redis.Redis, stream: str, group: dict) -> int:
    lag = group.get("lag")
    if lag is not None:
        return int(lag)
    # The server could not tell (entries deleted mid-stream): count what follows the last delivery.
    last = _text(group["last-delivered-id"])
    return len(client.xrange(stream, min=f"({last}", max="+", count=_LAG_SCAN_LIMIT))


def stream_stats(client: redis.Redis, stream: str, *, dead_stream: str | None = None) -> StreamStats:
    """Figures for ``stream``; a stream that does not exist reads as empty."""
    if not client.exists(stream):
        return StreamStats(stream=stream, length=0, groups=(),
                           dead=client.xlen(dead_stream) if dead_stream else None)
    groups = []
    for group in client.xinfo_groups(stream):
        name = _text(group["name"])
        consumers = tuple(ConsumerStats(name=_text(c["name"]), pending=int(c["pending"]), idle_ms=int(c["idle"]))
                          for c in client.xinfo_consumers(stream, name))
        read = group.get("entries-read")
        groups.append(GroupStats(name=name, pending=int(group["pending"]), lag=_lag(client, stream, group),
                                 last_delivered=_text(group["last-delivered-id"]), consumers=consumers,
                                 entries_read=int(read) if read is not None else None))
    return StreamStats(stream=stream, length=client.xlen(stream), groups=tuple(groups),
                       dead=client.xlen(dead_stream) if dead_stream else None,
                       trimmed_unread=trimmed_unread(client, stream))


def results_stats(client: redis.Redis, scheduler_id: str) -> StreamStats:
    return stream_stats(client, keys.results_stream(scheduler_id),
                        dead_stream=keys.results_dead_stream(scheduler_id))


def known_schedulers(client: redis.Redis) -> list[str]:
    """Every scheduler id podq keeps a results stream for."""
    return sorted(_text(item) for item in client.smembers(keys.SCHEDULERS_SET))


def all_stats(client: redis.Redis) -> list[StreamStats]:
    """Intake's input streams and every known scheduler's results stream."""
    schedulers = known_schedulers(client)
    return [stream_stats(client, keys.JOBS_STREAM, dead_stream=keys.DEAD_STREAM),
            stream_stats(client, keys.CONTROL_STREAM),
            *(results_stats(client, scheduler_id) for scheduler_id in schedulers)]
