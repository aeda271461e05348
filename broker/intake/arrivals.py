"""Intake's read-ahead: job entries read from ``podq:jobs`` and not admitted yet, one line per
scheduler, admitted in turns.

``podq:jobs`` is one stream for every scheduler. Read in order, a burst of 20,000 jobs from one
scheduler would hold every other scheduler's jobs behind it for as long as intake takes to admit
the burst (seconds). So intake reads ahead, up to ``PODQ_INTAKE_READ_AHEAD`` entries (cheaply: only
a record's scheduler id is read, :meth:`KubernetesJob.scheduler_of`), and every batch it admits
takes from each scheduler's line in turn (:meth:`Arrivals.take`): a job that arrives behind another
scheduler's burst is admitted with the next batch. Each line keeps its arrival order.

The entries stay in intake's pending list until they are admitted and acknowledged, as they did
when intake read one batch at a time: a crash leaves them there for the restarted intake (or
another) to read again.
"""
from __future__ import annotations

from collections import deque

Entry = tuple[str, dict]
"""A stream entry: its id and its fields."""


class Arrivals:
    """Entries read and not admitted yet, one line per scheduler (pure logic; intake owns one)."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self._lines: dict[str, deque[Entry]] = {}
        self._held: set[str] = set()

    def __len__(self) -> int:
        return len(self._held)

    @property
    def room(self) -> int:
        """How many more entries may be read ahead."""
        return max(0, self.limit - len(self._held))

    def holds(self, entry_id: str) -> bool:
        return entry_id in self._held

    def add(self, scheduler: str, entry: Entry) -> bool:
        """Queue ``entry`` in ``scheduler``'s line; False (and nothing queued) when it is held already."""
        if entry[0] in self._held:
            return False
        self._held.add(entry[0])
        self._lines.setdefault(scheduler, deque()).append(entry)
        return True

    def take(self, count: int) -> list[Entry]:
        """Up to ``count`` entries shared evenly between the schedulers' lines, each line's from its
        head; a line shorter than its share leaves the rest to the others (max-min fairness)."""
        lines = sorted(self._lines.items(), key=lambda item: len(item[1]))
        taken: list[Entry] = []
        left = count
        for index, (scheduler, line) in enumerate(lines):
            share = -(-left // (len(lines) - index))
            for _ in range(min(share, len(line))):
                entry = line.popleft()
                self._held.discard(entry[0])
                taken.append(entry)
            left = count - len(taken)
            if not line:
                del self._lines[scheduler]
        return taken
