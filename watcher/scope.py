"""One scope's list+watch loop, run while this replica holds the scope's lease.

A session loads the scope's stored states and position once (on becoming
leader, or after a failure), lists and diffs when there is no usable position,
then watches from it. A reader thread feeds raw lines into a queue; the loop
drains it in batches of up to ``batch_size`` events, so one publish-script call
carries a batch's results, pod states and resourceVersion. 410 (an ERROR event
or an HTTP error) → list, diff, publish what was missed, watch from the list.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import urllib3

from podq.broker.errors import FencedError
from podq.shared import metrics
from podq.shared.loops import LoopCrashed, run_loop
from podq.shared.settings import WatcherSettings
from podq.shared.states import State

from .classify import classify, left_the_watch
from .errors import ResourceExpired, WatchFailed
from .events import BadEvent, EventType, decode_line, pod_view
from .health import Health
from .kube import KubePods, WatchStream
from .notices import Notice, NoticeLoop
from .publishing import Broker, Scope, after_publish, publish
from .relaunch import LaunchPolicy
from .tracker import Intent, Tracker
from .unseen import created_jobs, unseen_endings

log = logging.getLogger(__name__)
_END = object()
_TICK = 0.5


class _Idle(Exception):
    """The watch was silent past the idle limit."""


class ScopeRunner:
    """Lists and watches one scope and publishes what changes, with one lease token."""

    def __init__(self, *, scope: Scope, token: str, broker: Broker, kube: KubePods,
                 settings: WatcherSettings, health: Health, default_namespace: str = "default") -> None:
        self.scope = scope
        self._default_namespace = default_namespace
        self.token = token
        self._broker = broker
        self._kube = kube
        self._settings = settings
        self._health = health
        self._fatal = frozenset(settings.fatal_reasons)
        self.stop = threading.Event()
        self.synced = threading.Event()     # set once the first list/resume is done
        self.crashed = False
        self.fenced = False
        self.lock = threading.Lock()        # guards the tracker and the publish calls
        self.tracker: Tracker | None = None
        self.rv: str | None = None
        self.events = 0
        self._last_sweep = 0.0
        self._thread: threading.Thread | None = None
        self._stream: WatchStream | None = None
        self._notices: NoticeLoop | None = None
        self._launches = LaunchPolicy.of(settings)
        # Launch failures seen before their create was recorded, asked about again each sweep.
        self._undecided: list[Intent] = []

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "ScopeRunner":
        self._thread = threading.Thread(target=self._main, name=f"podq-watch-{self.scope.name}", daemon=True)
        self._thread.start()
        if self._settings.pod_events:
            self._notices = NoticeLoop(name=self.scope.name, namespace=self.scope.namespace, kube=self._kube,
                                       deliver=self.notice, stop=self.stop).start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        if self._notices is not None:
            self._notices.close(timeout)
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        try:
            run_loop(f"watch:{self.scope.name}", self._session, stop=self.stop,
                     max_crashes=self._settings.max_crashes, backoff=0.5, max_backoff=15.0)
        except LoopCrashed:
            self.crashed = True
            log.error("scope %s: watch loop gave up", self.scope.name)

    # -- one session ---------------------------------------------------------------------------
    def _session(self) -> bool:
        try:
            if self.tracker is None:
                with self.lock:
                    self.tracker = Tracker.from_stored(self._broker.store.states(self.scope.name),
                                                       reason_interval=self._settings.pending_reason_interval)
                    self.rv = self._broker.store.position(self.scope.name)
                log.info("scope %s: leader with token %s; %d pods stored, position %s",
                         self.scope.name, self.token, len(self.tracker), self.rv)
            if self.rv is None:
                self.relist()
            self.synced.set()
            self._watch()
        except ResourceExpired as exc:
            metrics.WATCH_EXPIRED.labels(self.scope.name).inc()
            log.info("scope %s: %s; relisting", self.scope.name, exc)
            self.rv = None
        except FencedError as exc:
            metrics.WATCHER_FENCED.labels(self.scope.name).inc()
            log.warning("scope %s: deposed (%s); stopping", self.scope.name, exc)
            self.fenced = True
            self.stop.set()
        except BaseException:
            self.tracker = None  # memory may be ahead of Redis: reload on the next session
            raise
        return True

    def relist(self) -> None:
        """List every pod of the scope, publish what changed since the stored states, set the position."""
        started = time.monotonic()
        metrics.WATCH_RELISTS.labels(self.scope.name).inc()
        present: set[str] = set()
        intents: list[Intent] = []
        position, token, pages = None, None, 0
        # Jobs whose pod existed before this list began: one the list misses too ends now (unseen.py).
        created = created_jobs(self._broker.ledger, self.scope.covers, default_namespace=self._default_namespace)
        while True:
            page = self._kube.list_page(self.scope.namespace, token=token)
            position = position or page.resource_version
            pages += 1
            now = time.time()
            with self.lock:
                for raw in page.items:
                    pod = pod_view(raw)
                    if pod.identity is None:
                        continue
                    present.add(pod.ref)
                    intents.extend(self.tracker.apply(EventType.LISTED, pod, classify(
                        EventType.LISTED, pod, fatal_reasons=self._fatal), now=now))
                if len(intents) >= self._settings.batch_size:
                    self._publish(intents, position=None)
                    intents = []
            self._health.touch(self.scope.name)
            token = page.next_token
            if not token:
                break
        with self.lock:
            gone = self.tracker.vanished(present)
            for intent in gone:
                if intent.state is not State.LOST:
                    continue
                raw = self._kube.read(intent.namespace, intent.pod_name)
                if raw is not None:
                    # It only left the selector (marked done, relabelled): its status now decides.
                    verdict = left_the_watch(pod_view(raw))
                    intent.state, intent.details, intent.note = verdict.state, verdict.details, verdict.note
            intents.extend(gone)
            ended = {intent.ref for intent in gone}
            unseen = unseen_endings(self._broker.ledger, created, read=self._kube.read,
                                    seen=lambda ref: ref in present or ref in ended or self.tracker.knows(ref),
                                    default_namespace=self._default_namespace)
            intents.extend(unseen)
            self._publish(intents, position=position)
        self.rv = position
        log.info("scope %s: listed %d pods in %d pages (%.2f s), %d gone, %d created but never seen; watching "
                 "from %s", self.scope.name, len(present), pages, time.monotonic() - started, len(gone), len(unseen),
                 position)

    def _watch(self) -> None:
        if self.rv is not None:
            metrics.WATCH_RECONNECTS.labels(self.scope.name).inc()
        stream = self._kube.watch(self.scope.namespace, resource_version=self.rv)
        self._stream = stream
        self._health.touch(self.scope.name)
        lines: queue.SimpleQueue = queue.SimpleQueue()
        reader = threading.Thread(target=_read, args=(stream, lines), name=f"podq-read-{self.scope.name}",
                                  daemon=True)
        reader.start()
        opened, received = time.monotonic(), False
        try:
            while not self.stop.is_set():
                try:
                    first = lines.get(timeout=_TICK)
                except queue.Empty:
                    self._sweep()
                    continue
                batch, ending = [], first
                if isinstance(first, list):
                    batch, ending = _gather(lines, first, size=self._settings.batch_size,
                                            linger=self._settings.batch_linger)
                if batch:
                    received = True
                    self._handle(batch)
                if ending is _END:
                    log.debug("scope %s: watch ended; resuming from %s", self.scope.name, self.rv)
                    return
                if isinstance(ending, _Idle):
                    log.info("scope %s: watch silent for %.0f s; resuming from %s", self.scope.name,
                             self._settings.idle_limit, self.rv)
                    return
                if isinstance(ending, BaseException):
                    if self.stop.is_set():
                        return
                    if time.monotonic() - opened < 1.0 and not received:
                        raise ending  # failing at once: let the loop back off
                    log.warning("scope %s: %s; resuming from %s", self.scope.name, ending, self.rv)
                    return
                self._sweep()
        finally:
            self._stream = None
            stream.close()
            reader.join(2.0)

    def _handle(self, lines: list[bytes]) -> None:
        intents: list[Intent] = []
        position = None
        expired = None
        now = time.time()
        seen: dict[str, int] = {}
        with self.lock:
            for line in lines:
                try:
                    event = decode_line(line)
                except BadEvent as exc:
                    log.warning("scope %s: skipping a watch line: %s", self.scope.name, exc)
                    continue
                seen[event.type.value] = seen.get(event.type.value, 0) + 1
                if event.type is EventType.ERROR:
                    error = event.error
                    if error.code == 410:
                        expired = ResourceExpired(f"watch expired: {error.message}")
                        break
                    raise WatchFailed(f"watch ERROR event {error.code} {error.reason}: {error.message}")
                if event.resource_version:
                    position = event.resource_version
                pod = event.pod
                if pod is None:
                    continue
                if pod.identity is None and not self.tracker.knows(pod.ref):
                    log.warning("scope %s: pod %s has no podq job annotations; ignored", self.scope.name, pod.ref)
                    continue
                verdict = classify(event.type, pod, fatal_reasons=self._fatal)
                if verdict.warn:
                    log.warning("scope %s: pod %s: %s", self.scope.name, pod.ref, verdict.note)
                intents.extend(self.tracker.apply(event.type, pod, verdict, now=now))
            self.events += len(lines)
            for kind, count in seen.items():
                metrics.WATCH_EVENTS.labels(self.scope.name, kind).inc(count)
            self._publish(intents, position=position)
            if position:
                self.rv = position
        self._health.touch(self.scope.name)
        if expired is not None:
            raise expired

    def _sweep(self) -> None:
        """Publish held pending reasons whose interval ended; fail pods Pending past the deadline
        (about once a second)."""
        now = time.time()
        if now - self._last_sweep < 1.0:
            return
        self._last_sweep = now
        with self.lock:
            due = self.tracker.held_reasons(now=now)
            undecided, self._undecided = self._undecided, []
            for intent in undecided:
                if intent.decide_by is not None and now >= intent.decide_by:
                    intent.launch_failure = False  # its create never got recorded: the failure stands
                due.append(intent)
            due.extend(self.tracker.overdue(now=now, deadline=self._settings.pending_deadline))
            if due:
                self._publish(due, position=None)

    def _publish(self, intents: list[Intent], *, position: str | None) -> None:
        """Publish under ``self.lock`` (held by the caller), then the follow-up requests."""
        later: list[Intent] = []
        publish(self._broker, self.scope, intents, token=self.token, position=position,
                batch_size=self._settings.batch_size, launches=self._launches, later=later,
                read_tail=self._kube.tail_log, tail_lines=self._settings.failure_log_lines)
        now = time.time()
        for intent in later:
            intent.decide_by = intent.decide_by or now + self._settings.created_grace
        self._undecided.extend(later)
        if any(intent.complete or intent.revoke_pod or intent.retire_pod for intent in intents):
            after_publish(self._broker, self._kube, intents)

    def notice(self, notices: list[Notice]) -> None:
        """Kubernetes Events about pods (the notice loop's thread): kept, and new pending reasons published."""
        now = time.time()
        try:
            with self.lock:
                if self.tracker is None or not self.synced.is_set():
                    return  # loading: the next list of Events brings them again
                intents = [intent for notice in notices for intent in self.tracker.noted(notice, now=now)]
                if intents:
                    self._publish(intents, position=None)
        except FencedError as exc:
            metrics.WATCHER_FENCED.labels(self.scope.name).inc()
            log.warning("scope %s: deposed (%s); stopping", self.scope.name, exc)
            self.fenced = True
            self.stop.set()

    def publish_external(self, intents: list[Intent]) -> None:
        """Publish intents made outside the loop (the reconciler) under the same lock and token."""
        with self.lock:
            self._publish(intents, position=None)


def _gather(lines: queue.SimpleQueue, first: list, *, size: int, linger: float) -> tuple[list, Any]:
    """A batch of up to ``size`` lines starting with ``first``, and what ended the stream (None: nothing).

    Lines already queued join at once; then lines arriving within ``linger`` seconds of the
    first join too: one publish call for several events, for at most ``linger`` of added latency.
    """
    batch, until = list(first), time.monotonic() + linger
    while len(batch) < size:
        try:
            more = lines.get_nowait()
        except queue.Empty:
            left = until - time.monotonic()
            if left <= 0:
                return batch, None
            try:
                more = lines.get(timeout=left)
            except queue.Empty:
                return batch, None
        if not isinstance(more, list):
            return batch, more
        batch.extend(more)
    return batch, None


def _read(stream: WatchStream, lines: queue.SimpleQueue) -> None:
    try:
        for chunk in stream.lines():
            lines.put(chunk)
        lines.put(_END)
    except urllib3.exceptions.ReadTimeoutError:
        lines.put(_Idle())
    except WatchFailed as exc:
        lines.put(exc)
    except Exception as exc:  # noqa: BLE001 - handed to the loop, which raises it
        lines.put(WatchFailed(f"watch reader: {type(exc).__name__}: {exc}"))
