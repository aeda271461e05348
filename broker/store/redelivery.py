"""Pending entries of a consumer group: reclaiming them, and dead-lettering poison ones.

A consumer that dies leaves its delivered-but-unacknowledged entries in the
group's pending list. Live consumers of the same group take over entries idle
longer than ``idle_ms`` (XAUTOCLAIM). Every redelivery (a restarted consumer
re-reading its own pending entries, or a claim) raises the entry's delivery
count; an entry delivered more than ``max_deliveries`` times is copied to a dead
stream with the reason and acknowledged, so one poison entry cannot loop forever.
Used by the results consumers and by intake.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import redis

from .streams import entries_of

log = logging.getLogger(__name__)

Entry = tuple[str, str, dict]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Redelivery:
    """Reclaim and dead-letter rules for one consumer of ``group``."""

    def __init__(self, client: redis.Redis, *, group: str, consumer: str, idle_ms: int,
                 max_deliveries: int, dead_stream: Callable[[str], str], count: int = 100,
                 interval: float | None = None) -> None:
        self.client = client
        self.group = group
        self.consumer = consumer
        self.idle_ms = idle_ms
        self.max_deliveries = max_deliveries
        self.dead_stream = dead_stream
        self.count = count
        # Looking twice per idle period bounds how long an orphaned entry waits (≤ 1.5 × idle).
        self.interval = min(idle_ms / 2000.0, 5.0) if interval is None else interval
        self._next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def reclaim(self, streams: Sequence[str], *, force: bool = False) -> list[Entry]:
        """Claim entries idle past ``idle_ms`` on ``streams`` for this consumer (when due)."""
        if not force and not self.due():
            return []
        self._next = time.monotonic() + self.interval
        claimed: list[Entry] = []
        for stream in streams:
            cursor = "0-0"
            for _ in range(100):  # bounded walk over a large pending list
                try:
                    reply = self.client.xautoclaim(stream, self.group, self.consumer, self.idle_ms,
                                                   start_id=cursor, count=self.count)
                except redis.ResponseError as exc:
                    if "NOGROUP" in str(exc):
                        break
                    raise
                cursor, entries = _text(reply[0]), reply[1]
                if len(reply) > 2 and reply[2]:
                    log.warning("%d pending entries of %s/%s were trimmed before anyone acked them",
                                len(reply[2]), stream, self.group)
                claimed.extend((stream, _text(entry_id), fields or {}) for entry_id, fields in entries)
                if cursor == "0-0" or len(claimed) >= self.count:
                    break
        if claimed:
            log.info("consumer %s reclaimed %d idle entries of group %s", self.consumer, len(claimed), self.group)
        return self.screen(claimed)

    def screen(self, entries: list[Entry]) -> list[Entry]:
        """Of entries redelivered from the pending list, keep those still deliverable.

        Entries trimmed away while pending (no fields) are acknowledged; entries
        delivered more than ``max_deliveries`` times go to the dead stream.
        """
        if not entries:
            return []
        counts = self._delivery_counts(entries)
        keep, dead, gone = [], [], []
        for entry in entries:
            stream, entry_id, fields = entry
            if not fields:
                gone.append(entry)
            elif counts.get((stream, entry_id), 1) > self.max_deliveries:
                dead.append(entry)
            else:
                keep.append(entry)
        if dead or gone:
            pipe = self.client.pipeline(transaction=True)
            for stream, entry_id, fields in dead:
                reason = (f"delivered {counts[(stream, entry_id)]} times to group {self.group} "
                          f"without an ack (limit {self.max_deliveries})")
                log.error("entry %s of %s: %s; moved to %s", entry_id, stream, reason, self.dead_stream(stream))
                pipe.xadd(self.dead_stream(stream), {
                    "record": fields.get(b"record", fields.get("record", b"")), "reason": reason,
                    "stream": stream, "entry_id": entry_id, "group": self.group,
                    "consumer": self.consumer, "at": repr(time.time())})
            for stream, entry_id, _fields in dead + gone:
                pipe.xack(stream, self.group, entry_id)
            pipe.execute()
        return keep

    def _delivery_counts(self, entries: list[Entry]) -> dict[tuple[str, str], int]:
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _fields in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        counts = {}
        for stream, ids in by_stream.items():
            pending = self.client.xpending_range(stream, self.group, min=min(ids, key=_id_key),
                                                 max=max(ids, key=_id_key), count=len(ids) * 2 + 10,
                                                 consumername=self.consumer)
            for item in pending:
                counts[(stream, _text(item["message_id"]))] = int(item["times_delivered"])
        return counts


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def read_own_backlog(client: redis.Redis, *, group: str, consumer: str, streams: Sequence[str],
                     count: int, after: str = "0") -> list[Entry]:
    """This consumer's delivered-but-unacknowledged entries after id ``after`` (a restart re-reads them first)."""
    return entries_of(client.xreadgroup(group, consumer, {stream: after for stream in streams}, count=count))
