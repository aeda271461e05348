"""Consumer-group plumbing shared by intake and the results consumers."""
from __future__ import annotations

import socket
import os

import redis


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` at id 0 (and the stream) unless it exists."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def default_consumer_name(role: str) -> str:
    """A consumer name stable across restarts of the same service on the same host."""
    return f"{role}-{os.environ.get('HOSTNAME') or socket.gethostname()}"


def entries_of(reply) -> list[tuple[str, str, dict]]:
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
    return fields.get(b"record", fields.get("record"))
