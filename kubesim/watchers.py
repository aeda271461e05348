"""Open watches: each one's filter and outgoing buffer, and the hub that fans every event out to them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .history import ADDED, DELETED, MODIFIED, Event
from .selectors import FieldSelector, LabelSelector

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class Watcher:
    """One open watch stream: what it matches, and the lines waiting to be written to it."""

    def __init__(
        self,
        *,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        max_buffer: int,
    ) -> None:
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.max_buffer = max_buffer
        self.buffer: list[bytes] = []
        self.wake = asyncio.Event()
        self.closed = False
        self.close_reason = ""
        self.last_rv = 0
        self.after_rv = 0
        """events at or below this RV were already covered by the start of the stream"""
        self._unfiltered = not labels.requirements and not fields.terms

    def matches(self, obj: JsonDict | None) -> bool:
        if obj is None:
            return False
        if self._unfiltered:
            return True
        return self.labels.matches(obj["metadata"].get("labels")) and self.fields.matches(obj)

    def line_for(self, event: Event) -> bytes | None:
        """The line this watcher must see for ``event`` (selector transitions included), or None."""
        if event.rv <= self.after_rv or (self.namespace is not None and event.namespace != self.namespace):
            return None
        new_match = self.matches(event.new)
        if event.kind == ADDED:
            return event.line(ADDED) if new_match else None
        if event.kind == DELETED:
            return event.line(DELETED) if new_match else None
        old_match = self.matches(event.old)
        if new_match:
            return event.line(MODIFIED if old_match else ADDED)
        return event.departed_line() if old_match else None

    def push(self, line: bytes, rv: int) -> None:
        if self.closed:
            return
        self.buffer.append(line)
        self.last_rv = rv
        if len(self.buffer) > self.max_buffer:
            self.close("too slow: buffer overflow")
        self.wake.set()

    def take(self) -> list[bytes]:
        lines, self.buffer = self.buffer, []
        self.wake.clear()
        return lines

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = reason
            self.wake.set()


class WatchHub:
    """Every open watch; ``publish`` hands each event to the ones it concerns."""

    def __init__(self) -> None:
        self._watchers: set[Watcher] = set()

    def __len__(self) -> int:
        return len(self._watchers)

    def add(self, watcher: Watcher) -> None:
        self._watchers.add(watcher)

    def discard(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def publish(self, event: Event) -> None:
        for watcher in self._watchers:
            line = watcher.line_for(event)
            if line is not None:
                watcher.push(line, event.rv)

    def close_all(self, reason: str) -> int:
        count = 0
        for watcher in list(self._watchers):
            if not watcher.closed:
                watcher.close(reason)
                count += 1
        log.info("closed %s watch streams: %s", count, reason)
        return count
