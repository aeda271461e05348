"""Write events: the bounded history a watch replays from, and the shared, pre-serialized event lines."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import orjson

JsonDict = dict[str, Any]

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


def event_line(kind: str, raw_object: bytes) -> bytes:
    """One watch event as the stream carries it: a JSON object and a newline."""
    return b'{"type":"' + kind.encode() + b'","object":' + raw_object + b"}\n"


@dataclass(slots=True)
class Event:
    """One write to a pod. ``new`` is the state after it (for a removal, the last state with the removal's RV)."""

    rv: int
    kind: str
    namespace: str
    new: JsonDict
    raw: bytes
    old: JsonDict | None
    _lines: dict[str, bytes] = field(default_factory=dict)

    def line(self, kind: str) -> bytes:
        """The event line for ``kind``; built once and shared by every watcher that needs it."""
        line = self._lines.get(kind)
        if line is None:
            line = self._lines[kind] = event_line(kind, self.raw)
        return line

    def departed_line(self) -> bytes:
        """DELETED carrying the previous object with this event's RV: the object left a watcher's selector."""
        line = self._lines.get("departed")
        if line is None:
            assert self.old is not None
            meta = dict(self.old["metadata"])
            meta["resourceVersion"] = str(self.rv)
            gone = dict(self.old)
            gone["metadata"] = meta
            line = self._lines["departed"] = event_line(DELETED, orjson.dumps(gone))
        return line


class History:
    """Events in RV order, bounded by ``size``; knows the oldest RV a watch may still resume from."""

    def __init__(self, *, size: int, start_rv: int) -> None:
        self.size = max(1, size)
        self._events: list[Event] = []
        self._rvs: list[int] = []
        self.compacted_rv = start_rv

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: Event) -> None:
        self._events.append(event)
        self._rvs.append(event.rv)
        excess = len(self._events) - self.size
        if excess > max(64, self.size // 10):  # trim in batches: a list delete from the front is O(n)
            self._trim(excess)

    def _trim(self, count: int) -> None:
        if count <= 0:
            return
        self.compacted_rv = self._rvs[count - 1]
        del self._events[:count]
        del self._rvs[:count]

    def resize(self, size: int) -> None:
        self.size = max(1, size)
        self._trim(len(self._events) - self.size)

    def compact(self, current_rv: int) -> int:
        """Forget every event: a watch may then only start at ``current_rv`` or later."""
        self._events.clear()
        self._rvs.clear()
        self.compacted_rv = current_rv
        return current_rv

    def available_from(self, rv: int) -> bool:
        return rv >= self.compacted_rv

    def since(self, rv: int) -> list[Event]:
        """Every kept event with an RV above ``rv``."""
        return self._events[bisect.bisect_right(self._rvs, rv) :]
