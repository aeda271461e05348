"""Fair shares of a cluster's create capacity between schedulers: the pure arithmetic of the dispatcher.

* :class:`Table` reads ``PODQ_INTAKE_SCHEDULER_WEIGHTS`` / ``PODQ_INTAKE_SCHEDULER_MAX_IN_FLIGHT``:
  ``id=value`` or ``prefix*=value`` entries; an exact id wins, then the longest prefix.
* :func:`plan` is weighted stride scheduling over the lines: each job given to a scheduler adds
  ``1 / weight`` to its pass, and the next job goes to the lowest pass among the lines that have
  jobs and room under their cap. A scheduler alone gets everything (work-conserving); several
  share in proportion to their weights, whatever their backlogs.
* :func:`window` is how many jobs to keep dispatched ahead of the workers: enough to keep the
  budget busy (its rate × (``ahead`` + the API server's unloaded create latency)), no more, so
  that a job arriving in another line, or of a higher priority, goes within about that long,
  and a queue at the API server stays within it.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from podq.broker.store.waiting import Line
from podq.shared.errors import SettingsError


@dataclass(frozen=True)
class Table:
    """Values per scheduler id (``id``) or id prefix (``prefix*``), with a default for the rest."""

    exact: Mapping[str, float]
    prefixes: tuple[tuple[str, float], ...]
    default: float | None

    @classmethod
    def parse(cls, entries: Iterable[str], *, setting: str, default: float | None,
              minimum: float) -> "Table":
        """``entries`` as the setting gives them; raises SettingsError naming the bad entry."""
        exact: dict[str, float] = {}
        prefixes: list[tuple[str, float]] = []
        for entry in entries:
            name, sep, raw = entry.rpartition("=")
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not sep or not name.strip() or not value >= minimum:
                raise SettingsError(f"{setting}: {entry!r} is not <scheduler id>=<number ≥ {minimum:g}> "
                                    "or <id prefix>*=<number>")
            name = name.strip()
            if name.endswith("*"):
                prefixes.append((name[:-1], value))
            else:
                exact[name] = value
        prefixes.sort(key=lambda item: -len(item[0]))
        return cls(exact=exact, prefixes=tuple(prefixes), default=default)

    def get(self, scheduler: str) -> float | None:
        if scheduler in self.exact:
            return self.exact[scheduler]
        return next((value for prefix, value in self.prefixes if scheduler.startswith(prefix)), self.default)

    @property
    def empty(self) -> bool:
        return not self.exact and not self.prefixes


def window(*, rate: float, latency: float, ahead: float, floor: int) -> int:
    """Jobs to keep dispatched ahead of the workers for a budget of ``rate`` creates/s."""
    return max(floor, math.ceil(rate * (ahead + max(0.0, latency))))


def plan(lines: Iterable[Line], *, room: int, weights: Table, caps: Table) -> dict[str, int]:
    """How many jobs each line gives to the next ``room`` dispatched (stride scheduling)."""
    heap: list[tuple[float, str]] = []
    left: dict[str, int] = {}
    for line in lines:
        cap = caps.get(line.scheduler)
        available = line.waiting if cap is None else min(line.waiting, max(0, int(cap) - line.in_flight))
        if available > 0:
            left[line.scheduler] = available
            heap.append((line.pass_, line.scheduler))
    heapq.heapify(heap)
    given: dict[str, int] = {}
    while heap and room > 0:
        pass_, name = heapq.heappop(heap)
        given[name] = given.get(name, 0) + 1
        left[name] -= 1
        room -= 1
        if left[name]:
            heapq.heappush(heap, (pass_ + 1.0 / (weights.get(name) or 1.0), name))
    return given
