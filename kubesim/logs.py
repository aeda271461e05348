"""Container output: one bounded line buffer per container instance (keyed by its containerID, as a kubelet
keys its log files), the selection rules of ``pods/log`` (tailLines, sinceSeconds/sinceTime, limitBytes,
timestamps), and the wake-ups that let ``follow=true`` streams wait for new lines.

Everything here runs on the server's event loop; no locks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .history import Event

def timestamp(t_ns: int) -> bytes:
    """The kubelet's log timestamp: RFC 3339 in UTC with nine fixed fraction digits."""
    seconds, nanos = divmod(t_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + b".%09dZ" % nanos


@dataclass(frozen=True, slots=True)
class LogOptions:
    """The selection a ``pods/log`` request asks for (already validated)."""

    tail_lines: int | None = None
    since_ns: int | None = None
    """only lines written at or after this wall-clock time (nanoseconds since the epoch)"""
    limit_bytes: int | None = None
    timestamps: bool = False


class LogBuffer:
    """What one container instance wrote (stdout and stderr interleaved), line by line with the time of each."""

    def __init__(self, *, uid: str, limit_bytes: int, wake: LogStore) -> None:
        self.uid = uid
        self.limit_bytes = limit_bytes
        self.lines: deque[tuple[int, bytes]] = deque()
        self.first_seq = 0
        """sequence number of ``lines[0]``; grows as old lines are dropped"""
        self.size = 0
        self.closed = False
        self._partial = b""
        self._wake = wake

    @property
    def end_seq(self) -> int:
        return self.first_seq + len(self.lines)

    def feed(self, chunk: bytes) -> None:
        """Append raw output; complete lines become visible at once, a trailing partial line on ``close``."""
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if cut:
            now = time.time_ns()
            for line in data[:cut].splitlines(keepends=True):
                self._append(now, line)
            self._wake.notify(self.uid)

    def close(self) -> None:
        """The container instance ended: flush a partial last line and let followers finish."""
        if self._partial:
            self._append(time.time_ns(), self._partial)
            self._partial = b""
        self.closed = True
        self._wake.notify(self.uid)

    def _append(self, t_ns: int, line: bytes) -> None:
        self.lines.append((t_ns, line))
        self.size += len(line)
        while self.size > self.limit_bytes and len(self.lines) > 1:
            _, dropped = self.lines.popleft()
            self.size -= len(dropped)
            self.first_seq += 1

    def tail_text(self, *, lines: int = 80, size: int = 2048) -> str:
        """The end of the output as the kubelet's FallbackToLogsOnError message: at most 80 lines and 2048 bytes."""
        data = b"".join(line for _, line in list(self.lines)[-lines:])[-size:]
        return data.decode("utf-8", "replace")

    def since(self, seq: int) -> list[tuple[int, bytes]]:
        """The lines from sequence number ``seq`` on (those already dropped are skipped)."""
        start = max(seq, self.first_seq) - self.first_seq
        return [self.lines[i] for i in range(start, len(self.lines))]


def select(lines: Iterable[tuple[int, bytes]], options: LogOptions) -> list[tuple[int, bytes]]:
    """The first part of an answer: the last ``tail_lines`` lines, then those not older than ``since_ns``."""
    chosen = list(lines)
    if options.tail_lines is not None:
        chosen = chosen[len(chosen) - options.tail_lines :] if options.tail_lines else []
    if options.since_ns is not None:
        chosen = [item for item in chosen if item[0] >= options.since_ns]
    return chosen


def render(lines: Iterable[tuple[int, bytes]], *, timestamps: bool) -> bytes:
    if timestamps:
        return b"".join(timestamp(t) + b" " + line for t, line in lines)
    return b"".join(line for _, line in lines)


class LogStore:
    """Every container instance's buffer by containerID, and the follow streams waiting per pod uid."""

    def __init__(self, *, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.buffers: dict[str, LogBuffer] = {}
        self.by_pod: dict[str, list[str]] = {}
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self.closing = False

    def open(self, *, uid: str, container_id: str) -> LogBuffer:
        buffer = LogBuffer(uid=uid, limit_bytes=self.limit_bytes, wake=self)
        self.buffers[container_id] = buffer
        self.by_pod.setdefault(uid, []).append(container_id)
        return buffer

    def get(self, container_id: str) -> LogBuffer | None:
        return self.buffers.get(container_id)

    def drop_pod(self, uid: str) -> None:
        for container_id in self.by_pod.pop(uid, ()):
            self.buffers.pop(container_id, None)
        self.notify(uid)

    # -- follow streams ---------------------------------------------------------------------------
    def waiter(self, uid: str) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters.setdefault(uid, set()).add(event)
        return event

    def forget_waiter(self, uid: str, event: asyncio.Event) -> None:
        events = self.waiters.get(uid)
        if events is not None:
            events.discard(event)
            if not events:
                del self.waiters[uid]

    def notify(self, uid: str) -> None:
        for event in self.waiters.get(uid, ()):
            event.set()

    def pod_written(self, event: Event) -> None:
        """Store listener: a pod write may end a follow stream (its container stopped, or the pod is gone)."""
        if self.waiters:
            self.notify(event.new["metadata"]["uid"])

    def close_all(self) -> None:
        """The server is stopping: every follow stream ends."""
        self.closing = True
        for events in self.waiters.values():
            for event in events:
                event.set()
