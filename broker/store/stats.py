"""Backlog figures of podq's streams: per group, entries pending (delivered, not acked) and lag."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import redis

from podq.broker.store import keys

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
    return many_stream_stats(client, [(stream, dead_stream)])[0]


def many_stream_stats(client: redis.Redis, streams: Sequence[tuple[str, str | None]]) -> list[StreamStats]:
    """:func:`stream_stats` for each ``(stream, dead stream or None)``, in two round trips whatever their
    number (a cell with 1,000 schedulers is read in milliseconds, not one round trip per figure)."""
    pipe = client.pipeline(transaction=False)
    for stream, dead_stream in streams:
        pipe.xinfo_groups(stream)             # an error reply for a stream that does not exist
        pipe.xlen(stream)
        pipe.hget(keys.METRICS_KEY, keys.trim_unread_metric(stream))
        if dead_stream:
            pipe.xlen(dead_stream)
    replies = iter(pipe.execute(raise_on_error=False))
    read = []
    for stream, dead_stream in streams:
        groups, length, unread = next(replies), next(replies), next(replies)
        dead = next(replies) if dead_stream else None
        if isinstance(groups, redis.ResponseError):
            if "no such key" not in str(groups).lower():
                raise groups
            groups = []
        read.append((stream, groups, int(length), int(unread or 0), None if dead is None else int(dead)))
    pipe = client.pipeline(transaction=False)
    for stream, groups, *_ in read:
        for group in groups:
            pipe.xinfo_consumers(stream, _text(group["name"]))
    consumers = iter(pipe.execute())
    found = []
    for stream, groups, length, unread, dead in read:
        figures = []
        for group in groups:
            read_count = group.get("entries-read")
            figures.append(GroupStats(
                name=_text(group["name"]), pending=int(group["pending"]), lag=_lag(client, stream, group),
                last_delivered=_text(group["last-delivered-id"]),
                consumers=tuple(ConsumerStats(name=_text(c["name"]), pending=int(c["pending"]), idle_ms=int(c["idle"]))
                                for c in next(consumers)),
                entries_read=int(read_count) if read_count is not None else None))
        found.append(StreamStats(stream=stream, length=length, groups=tuple(figures), dead=dead,
                                 trimmed_unread=unread))
    return found


def results_stats(client: redis.Redis, scheduler_id: str) -> StreamStats:
    return stream_stats(client, keys.results_stream(scheduler_id),
                        dead_stream=keys.results_dead_stream(scheduler_id))


def known_schedulers(client: redis.Redis) -> list[str]:
    """Every scheduler id podq keeps a results stream for."""
    return sorted(_text(item) for item in client.smembers(keys.SCHEDULERS_SET))


def all_stats(client: redis.Redis) -> list[StreamStats]:
    """Intake's input streams and every known scheduler's results stream."""
    schedulers = known_schedulers(client)
    return many_stream_stats(client, [(keys.JOBS_STREAM, keys.DEAD_STREAM), (keys.CONTROL_STREAM, None),
                                      *((keys.results_stream(scheduler_id), keys.results_dead_stream(scheduler_id))
                                        for scheduler_id in schedulers)])
