"""The scheduler side: reading a results stream as ``KubernetesResults`` with a consumer group."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Iterator, Sequence

import redis

from podq.shared import keys
from podq.shared.errors import DecodeError
from podq.shared.records import KubernetesResults, KubernetesWatch

from .streams import default_consumer_name, ensure_group, entries_of, record_of

log = logging.getLogger(__name__)


class ResultsConsumer:
    """One consumer of ``podq:results:<scheduler_id>`` in group ``scheduler``.

    The consumer name is stable across restarts, so a restarted consumer first
    reads the entries it had been given but not acknowledged. Results whose
    ``event_id`` it has already returned are acknowledged and skipped.
    """

    def __init__(self, client: redis.Redis, *, scheduler_id: str, consumer: str | None = None,
                 group: str = keys.RESULTS_GROUP, batch_size: int = 100, block_ms: int = 1000,
                 dedupe_window: int = 100_000) -> None:
        self.client = client
        self.scheduler_id = scheduler_id
        self.stream = keys.results_stream(scheduler_id)
        self.group = group
        self.consumer = consumer or default_consumer_name(f"scheduler-{scheduler_id}")
        self.batch_size = batch_size
        self.block_ms = block_ms
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedupe_window = dedupe_window
        self._backlog_done = False
        ensure_group(client, self.stream, group)

    def read(self, *, count: int | None = None, block_ms: int | None = None) -> list[KubernetesResults]:
        """The next results for this consumer: its own unacknowledged ones first, then new ones."""
        count = count or self.batch_size
        entries = []
        if not self._backlog_done:
            # After a restart, this consumer's delivered-but-unacknowledged entries come first.
            entries = entries_of(self.client.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count))
            self._backlog_done = not entries
        if not entries:
            entries = entries_of(self.client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count,
                block=self.block_ms if block_ms is None else block_ms))
        return self._decode(entries)

    def _decode(self, entries) -> list[KubernetesResults]:
        results, skip = [], []
        for _stream, entry_id, fields in entries:
            try:
                watch = KubernetesWatch.decode(record_of(fields))
            except DecodeError as exc:
                log.error("results entry %s of %s is unreadable (%s); moved to the dead stream",
                          entry_id, self.stream, exc)
                self.client.xadd(keys.results_dead_stream(self.scheduler_id),
                                 {"record": record_of(fields) or b"", "reason": str(exc), "entry_id": entry_id})
                skip.append(entry_id)
                continue
            if watch.event_id in self._seen:
                skip.append(entry_id)
                continue
            self._remember(watch.event_id)
            results.append(KubernetesResults.from_watch(entry_id, watch))
        if skip:
            self.client.xack(self.stream, self.group, *skip)
        return results

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > self._dedupe_window:
            self._seen.popitem(last=False)

    def ack(self, results: Sequence[KubernetesResults | str]) -> int:
        """Acknowledge handled results (or entry ids)."""
        ids = [item if isinstance(item, str) else item.entry_id for item in results]
        return self.client.xack(self.stream, self.group, *ids) if ids else 0

    def follow(self, stop: threading.Event) -> Iterator[KubernetesResults]:
        """Yield results until ``stop`` is set; the caller acks what it has handled."""
        while not stop.is_set():
            yield from self.read()
