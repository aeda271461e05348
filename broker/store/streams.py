"""Streams and consumer groups: the Redis side of intake and of the results consumers."""
from __future__ import annotations

import os
import socket
from typing import Iterable, Mapping, Sequence

import redis

from . import keys
from .connection import durable
from .scripts import scripts_for

Entry = tuple[str, str, dict]


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` at id 0 (and the stream) unless it exists."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def ensure_results_group(client: redis.Redis, scheduler_id: str) -> None:
    """The scheduler's results stream with its group at id 0, and the scheduler known
    (``lua/lib/results_group.lua``, the one definition the publish and adopt scripts use too)."""
    ensure_results_groups(client, [scheduler_id])


def ensure_results_groups(client: redis.Redis, scheduler_ids: Iterable[str]) -> None:
    """:func:`ensure_results_group` for several schedulers in one round trip."""
    pipe = client.pipeline(transaction=False)
    for scheduler_id in scheduler_ids:
        scripts_for(client).results_group(keys=[keys.results_stream(scheduler_id), keys.SCHEDULERS_SET],
                                          args=[keys.RESULTS_GROUP, scheduler_id], client=pipe)
    pipe.execute()


def default_consumer_name(role: str) -> str:
    """A consumer name stable across restarts of the same service on the same host."""
    return f"{role}-{os.environ.get('HOSTNAME') or socket.gethostname()}"


def entries_of(reply) -> list[Entry]:
    """Flatten an XREADGROUP reply into (stream, entry_id, fields) triples."""
    flat = []
    for stream, entries in reply or []:
        stream = stream.decode() if isinstance(stream, bytes) else stream
        for entry_id, fields in entries:
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            flat.append((stream, entry_id, fields or {}))
    return flat


def record_of(fields: dict) -> bytes | None:
    """The msgpack record of a stream entry (field ``record``), or None if absent."""
    return fields.get(keys.RECORD_FIELD.encode(), fields.get(keys.RECORD_FIELD))


def read_group(client: redis.Redis, *, group: str, consumer: str, streams: Mapping[str, str], count: int,
               block_ms: int | None = None) -> list[Entry]:
    """XREADGROUP: ``streams`` maps each stream to where to read from (``>``: new entries)."""
    return entries_of(client.xreadgroup(group, consumer, dict(streams), count=count, block=block_ms))


def read(client: redis.Redis, *, streams: Mapping[str, str], count: int, block_ms: int | None = None) -> list[Entry]:
    """XREAD, outside any consumer group: ``streams`` maps each stream to the id to read after."""
    return entries_of(client.xread(dict(streams), count=count, block=block_ms))


def ack(client: redis.Redis, stream: str, group: str, entry_ids: Sequence[str]) -> int:
    return int(client.xack(stream, group, *entry_ids)) if entry_ids else 0


def dead_letter(client: redis.Redis, letters: Sequence[tuple[str, dict]], *, group: str,
                acks: Mapping[str, Sequence[str]] = {}) -> None:
    """Add each ``(dead stream, fields)`` letter and acknowledge ``acks`` (stream → entry ids), atomically."""
    pipe = client.pipeline(transaction=True)
    for dead_stream, fields in letters:
        pipe.xadd(dead_stream, fields)
    for stream, entry_ids in acks.items():
        if entry_ids:
            pipe.xack(stream, group, *entry_ids)
    pipe.execute()


def read_entry(client: redis.Redis, stream: str, entry_id: str) -> dict | None:
    """The fields of one stream entry, or None when it is gone (trimmed)."""
    found = client.xrange(stream, min=entry_id, max=entry_id)
    return found[0][1] if found else None


def add_records(client: redis.Redis, stream: str, payloads: Sequence[bytes]) -> list[str]:
    """XADD each msgpack record as its own entry (one round trip); the entry ids."""
    pipe = client.pipeline(transaction=False)
    for payload in payloads:
        pipe.xadd(stream, {keys.RECORD_FIELD: payload})
    return [entry.decode() for entry in durable(client, pipe)]
