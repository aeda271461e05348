"""The scheduler side: reading a results stream as ``KubernetesResults`` with a consumer group.

The stream ``podq:results:<scheduler_id>`` is a durable queue: its group
(``scheduler``) exists from id 0 before the first result is published, consumer
names are stable, a restarted consumer re-reads its own pending entries first,
entries a dead consumer left idle are reclaimed by live ones, an entry delivered
too many times goes to ``podq:results:<scheduler_id>:dead``, and results whose
``event_id`` this consumer has already handled are acknowledged and dropped.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Iterator, Sequence

from podq.broker.store import keys
from podq.broker.store.redelivery import Redelivery, read_own_backlog
from podq.broker.store import streams
from podq.broker.store.connection import Client
from podq.broker.store.streams import default_consumer_name
from podq.shared.errors import DecodeError
from podq.shared.records import KubernetesResults, KubernetesWatch
from podq.shared.settings import ResultsSettings

log = logging.getLogger(__name__)


class ResultsPeek:
    """Reads ``podq:results:<scheduler_id>`` outside any consumer group, from its oldest entry on.

    Nothing is acknowledged, claimed or created: the scheduler's own group, and `podq status`, see no
    trace of it (what `podq results` does unless told to consume).
    """

    def __init__(self, client: Client, *, scheduler_id: str, after: str = "0-0", batch_size: int = 100) -> None:
        self.client = client
        self.stream = keys.results_stream(scheduler_id)
        self.after = after
        self.batch_size = batch_size

    def read(self, *, block_ms: int = 0) -> list[KubernetesResults]:
        """The next results after the last one read; waits up to ``block_ms`` for new ones (0: no wait)."""
        entries = streams.read(self.client, streams={self.stream: self.after}, count=self.batch_size,
                               block_ms=block_ms or None)
        results = []
        for _stream, entry_id, fields in entries:
            self.after = entry_id
            payload = streams.record_of(fields)
            try:
                results.append(KubernetesResults.from_watch(entry_id, KubernetesWatch.decode(payload or b"")))
            except DecodeError as exc:
                log.warning("results entry %s of %s is unreadable (%s); skipped", entry_id, self.stream, exc)
        return results


class ResultsConsumer:
    """One consumer of ``podq:results:<scheduler_id>`` in group ``scheduler``.

    Call :meth:`read`, handle the results, then :meth:`ack` them. An event id is
    remembered once acknowledged (up to ``dedupe_window`` ids), so a redelivered
    copy of a handled result is acknowledged and skipped instead of returned.
    """

    def __init__(self, client: Client, *, scheduler_id: str, consumer: str | None = None,
                 group: str = keys.RESULTS_GROUP, batch_size: int = 100, block_ms: int = 1000,
                 dedupe_window: int = 100_000, reclaim_idle_ms: int = 60_000,
                 max_deliveries: int = 5) -> None:
        self.client = client
        self.scheduler_id = scheduler_id
        self.stream = keys.results_stream(scheduler_id)
        self.group = group
        self.consumer = consumer or default_consumer_name(f"scheduler-{scheduler_id}")
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.redelivery = Redelivery(client, group=group, consumer=self.consumer, idle_ms=reclaim_idle_ms,
                                     max_deliveries=max_deliveries,
                                     dead_stream=lambda _stream: keys.results_dead_stream(scheduler_id),
                                     count=batch_size)
        self._handled: OrderedDict[str, None] = OrderedDict()
        # Returned but not yet acknowledged: entry id -> event id, and event id -> entry id.
        self._outstanding: OrderedDict[str, str] = OrderedDict()
        self._by_event: dict[str, str] = {}
        self._dedupe_window = dedupe_window
        self._backlog_done = False
        self._backlog_cursor = "0"
        streams.ensure_results_group(client, scheduler_id)
        if group != keys.RESULTS_GROUP:   # a second reader of the same results (an audit, say)
            streams.ensure_group(client, self.stream, group)

    @classmethod
    def from_settings(cls, client: Client, settings: ResultsSettings, *, scheduler_id: str,
                      consumer: str | None = None) -> "ResultsConsumer":
        return cls(client, scheduler_id=scheduler_id, consumer=consumer, batch_size=settings.batch_size,
                   block_ms=settings.block_ms, reclaim_idle_ms=settings.reclaim_idle_ms,
                   max_deliveries=settings.max_deliveries)

    def read(self, *, count: int | None = None, block_ms: int | None = None) -> list[KubernetesResults]:
        """The next results: own unacknowledged ones first, then reclaimed ones, then new ones.

        Waits up to ``block_ms`` (default: the constructor's) for new results; 0 does not wait.
        """
        count = count or self.batch_size
        while not self._backlog_done:
            # After a restart, this consumer's delivered-but-unacknowledged entries come first,
            # paged forward so that results the caller has not acked yet are not handed out again.
            backlog = read_own_backlog(self.client, group=self.group, consumer=self.consumer,
                                       streams=[self.stream], count=count, after=self._backlog_cursor)
            self._backlog_done = not backlog
            if backlog:
                self._backlog_cursor = backlog[-1][1]
            results = self._decode(self.redelivery.screen(backlog))
            if results:
                return results
        results = self._decode(self.redelivery.reclaim([self.stream]))
        if results:
            return results
        block = self.block_ms if block_ms is None else block_ms
        # BLOCK 0 would wait forever; here 0 means "do not wait".
        entries = streams.read_group(self.client, group=self.group, consumer=self.consumer,
                                     streams={self.stream: ">"}, count=count, block_ms=block or None)
        return self._decode(entries)

    def reclaim(self) -> list[KubernetesResults]:
        """Claim idle entries of other consumers now (``read`` does it on its own when due)."""
        return self._decode(self.redelivery.reclaim([self.stream], force=True))

    def _decode(self, entries) -> list[KubernetesResults]:
        results, skip, dead = [], [], []
        for _stream, entry_id, fields in entries:
            payload = streams.record_of(fields)
            try:
                watch = KubernetesWatch.decode(payload if payload is not None else b"")
            except DecodeError as exc:
                log.error("results entry %s of %s is unreadable (%s); moved to the dead stream",
                          entry_id, self.stream, exc)
                dead.append((entry_id, payload, str(exc)))
                continue
            holder = self._by_event.get(watch.event_id, entry_id)
            if watch.event_id in self._handled or holder != entry_id:
                # Another entry carries this event (handled, or being handled): a duplicate.
                log.debug("duplicate result %s (entry %s) dropped", watch.event_id, entry_id)
                skip.append(entry_id)
                continue
            self._track(entry_id, watch.event_id)
            results.append(KubernetesResults.from_watch(entry_id, watch))
        if dead or skip:
            letters = [(keys.results_dead_stream(self.scheduler_id),
                        {keys.RECORD_FIELD: payload or b"", "reason": reason, "stream": self.stream,
                         "entry_id": entry_id, "group": self.group, "consumer": self.consumer})
                       for entry_id, payload, reason in dead]
            streams.dead_letter(self.client, letters, group=self.group,
                                acks={self.stream: [*skip, *[entry_id for entry_id, _, _ in dead]]})
        return results

    def _track(self, entry_id: str, event_id: str) -> None:
        self._outstanding[entry_id] = event_id
        self._by_event[event_id] = entry_id
        while len(self._outstanding) > self._dedupe_window:
            _old_entry, old_event = self._outstanding.popitem(last=False)
            self._by_event.pop(old_event, None)

    def ack(self, results: Sequence[KubernetesResults | str]) -> int:
        """Acknowledge handled results (or entry ids); their event ids count as handled."""
        ids = [item if isinstance(item, str) else item.entry_id for item in results]
        if not ids:
            return 0
        acked = streams.ack(self.client, self.stream, self.group, ids)
        for entry_id in ids:
            event_id = self._outstanding.pop(entry_id, None)
            if event_id is not None:
                self._by_event.pop(event_id, None)
                self._handled[event_id] = None
        while len(self._handled) > self._dedupe_window:
            self._handled.popitem(last=False)
        return acked

    def follow(self, stop: threading.Event) -> Iterator[KubernetesResults]:
        """Yield results until ``stop`` is set; the caller acks what it has handled."""
        while not stop.is_set():
            yield from self.read()
