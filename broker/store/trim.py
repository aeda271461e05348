"""Trimming podq's streams without losing an entry a consumer group still needs.

Every stream with consumer groups (``podq:jobs``, ``podq:control``, each
``podq:results:<scheduler_id>``) is trimmed below the lowest, over its groups, of
the oldest pending entry and the entry after the last delivered one: what is
removed has been read and acknowledged by every group. Only a stream that still
holds more than ``hard_cap`` entries (an abandoned stream) loses entries some group
has not finished; each such removal is counted in ``podq:metrics`` field
``trim_unread:<stream>``. Streams without groups (the dead-letter streams) are only
held to the hard cap. See ``lua/trim.lua``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from podq.broker.store import keys
from podq.shared.settings import TrimSettings

from .scripts import scripts_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrimReport:
    stream: str
    removed: int
    removed_unread: int


class Trimmer:
    """Trims every podq stream; ``maybe_run`` is intake's periodic hook."""

    PIPELINE = 500

    def __init__(self, client: redis.Redis, settings: TrimSettings | None = None) -> None:
        self.client = client
        self.settings = settings or TrimSettings()
        self._script = scripts_for(client).trim
        self._next = 0.0

    def streams(self) -> list[str]:
        """podq's streams: intake's inputs, dead letters, and every known scheduler's results."""
        schedulers = sorted(item.decode() for item in self.client.smembers(keys.SCHEDULERS_SET))
        names = [keys.JOBS_STREAM, keys.CONTROL_STREAM, keys.DEAD_STREAM]
        for scheduler_id in schedulers:
            names.extend((keys.results_stream(scheduler_id), keys.results_dead_stream(scheduler_id)))
        return names

    def trim(self, stream: str, *, hard_cap: int | None = None) -> TrimReport:
        return self.trim_many([stream], hard_cap=hard_cap)[0]

    def trim_many(self, streams: list[str], *, hard_cap: int | None = None) -> list[TrimReport]:
        """Trim ``streams``, a pipeline of script calls per ``PIPELINE`` streams (a pass over 1,000
        schedulers' streams costs a few round trips, not one per stream)."""
        cap = self.settings.hard_cap if hard_cap is None else hard_cap
        reports = []
        for first in range(0, len(streams), self.PIPELINE):
            chunk = streams[first:first + self.PIPELINE]
            pipe = self.client.pipeline(transaction=False)
            for stream in chunk:
                self._script(keys=[stream, keys.METRICS_KEY], args=[cap, keys.trim_unread_metric(stream)],
                             client=pipe)
            for stream, (removed, unread) in zip(chunk, pipe.execute()):
                if unread:
                    log.warning("stream %s passed its hard cap of %d entries: %d entries removed before "
                                "every group had acknowledged them", stream, cap, unread)
                reports.append(TrimReport(stream=stream, removed=int(removed), removed_unread=int(unread)))
        return reports

    def trim_all(self) -> list[TrimReport]:
        return self.trim_many(self.streams())

    def maybe_run(self) -> bool:
        """Trim everything if ``interval`` seconds have passed since the last pass."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.settings.interval
        reports = self.trim_all()
        log.debug("trimmed %d entries from %d streams", sum(r.removed for r in reports), len(reports))
        return True


def trimmed_unread(client: redis.Redis, stream: str) -> int:
    """How many entries of ``stream`` the hard cap removed before every group acked them."""
    value = client.hget(keys.METRICS_KEY, keys.trim_unread_metric(stream))
    return int(value or 0)
