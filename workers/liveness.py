"""A worker process's heartbeat: its liveness record, the deliveries it holds, the sweep for dead peers.

Every ``liveness_ttl / 4`` seconds the heartbeat thread renews this process's record
in Redis with the delivery tags of the messages it holds (tracked through Celery's
``task_received``/``task_postrun``/``task_revoked`` signals), and returns to the queue
the messages of workers whose record lapsed (:mod:`podq.broker.store.liveness`). A claim
taken by this process is void once its record lapses; :meth:`Heartbeat.may_create`
tells a delivery, before each create, whether its claim may have been taken over
meanwhile (a paused process, a Redis outage) and then checks it in Redis.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid

from celery import Celery, bootsteps, signals
from celery.worker import state as worker_state

from podq.broker.store import keys
from podq.broker.store.liveness import Liveness
from podq.shared.loops import LoopCrashed, run_loop

log = logging.getLogger(__name__)

# Consecutive failed beats (Redis unreachable) before the worker stops itself: by then its record
# has long lapsed and its claims are void, so going on would only create on claims it no longer holds.
MAX_FAILED_BEATS = 30


def worker_id(hostname: str | None = None) -> str:
    """A worker process's id: its name, pid and a random part (a restart under the same name is a new worker)."""
    return f"{hostname or socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """The liveness record of one worker process, renewed by a thread of its own."""

    def __init__(self, liveness: Liveness) -> None:
        self.liveness = liveness
        self.interval = liveness.ttl / 4
        # Bumped whenever a beat finds the record had lapsed: claims taken before may be gone.
        self.epoch = 0
        self._confirmed_at = float("-inf")  # monotonic time a successful beat was sent
        self._held: dict[str, str] = {}     # task id -> delivery tag
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._app: Celery | None = None
        self.queues: list[str] = [keys.CELERY_QUEUE]
        """The Celery queues this process consumes (one per cluster it serves): dead workers' messages
        from each, and this one's dropped deliveries, go back to their own queue."""

    @property
    def worker(self) -> str:
        return self.liveness.worker

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the deliveries this process holds -------------------------------------------------

    def attach(self, app: Celery) -> None:
        """Track the messages ``app``'s worker receives and finishes, and the ones it drops when its
        broker connection is lost (:meth:`connected`)."""
        self._app = app
        signals.task_received.connect(self._on_received, weak=False)
        signals.task_postrun.connect(self._on_postrun, weak=False)
        signals.task_revoked.connect(self._on_revoked, weak=False)
        heartbeat = self

        class Connected(bootsteps.StartStopStep):
            """Runs each time the consumer has (re)connected, before it consumes."""

            requires = ("celery.worker.consumer.connection:Connection",)

            def start(self, parent) -> None:
                heartbeat.connected({request.id for request in worker_state.active_requests})

        app.steps["consumer"].add(Connected)

    def connected(self, running: set[str]) -> None:
        """The consumer is connected (again): give back at once the deliveries Celery dropped.

        On a broker connection loss Celery forgets the messages it had reserved but not started
        (they cannot be acknowledged on a new connection) without a signal; this process would
        go on reporting them as held, so podq's sweep would leave them to kombu's visibility
        timeout (300 s). Every held delivery whose task is not running (``running``: the ids of
        the active requests) is forgotten and put back on the queue now; one that did not
        survive a failover is left to intake's orphan sweep.
        """
        with self._lock:
            dropped = {task_id: tag for task_id, tag in self._held.items() if task_id not in running}
            for task_id in dropped:
                del self._held[task_id]
        if not dropped:
            return
        try:
            given = sum(self.liveness.give_back(dropped.values(), queue=queue) for queue in self.queues)
        except Exception as exc:  # noqa: BLE001 - the sweep for unreported deliveries returns them later
            log.warning("worker %s: could not give back %d deliveries dropped at a broker reconnect (%s); "
                        "they return after the liveness grace", self.worker, len(dropped), exc)
            return
        log.warning("worker %s: broker connection lost; %d deliveries it had not started went back to the "
                    "queue (%d had not survived: intake's orphan sweep finds their jobs)",
                    self.worker, given, len(dropped) - given)

    def _mine(self, app) -> bool:
        return self._app is not None and app is self._app

    def _on_received(self, sender=None, request=None, **_kwargs) -> None:
        if request is None or not self._mine(getattr(sender, "app", None)):
            return
        tag = getattr(request.message, "delivery_tag", None)
        if tag:
            with self._lock:
                self._held[request.id] = tag

    def _on_postrun(self, sender=None, task_id=None, **_kwargs) -> None:
        if self._mine(getattr(sender, "app", None)):
            with self._lock:
                self._held.pop(task_id, None)

    def _on_revoked(self, sender=None, request=None, **_kwargs) -> None:
        if request is not None and self._mine(getattr(sender, "app", None)):
            with self._lock:
                self._held.pop(request.id, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held.values())

    # --- the record --------------------------------------------------------------------------

    def beat(self) -> None:
        """Renew the record once (and note a lapse), then sweep for dead workers' messages."""
        sent = time.monotonic()
        if self.liveness.beat(self.held()):
            self.epoch += 1
            if self._confirmed_at > float("-inf"):
                log.warning("worker %s: liveness record had lapsed (%.1f s since the last beat); "
                            "deliveries check their claims before creating", self.worker, sent - self._confirmed_at)
        self._confirmed_at = sent
        restored = sum(self.liveness.restore_dead(queue=queue) for queue in self.queues)
        if restored:
            log.warning("worker %s: %d messages of dead workers returned to the queue", self.worker, restored)

    def start(self) -> None:
        """Beat once (so claims are backed before any message is consumed), then keep beating."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="podq-liveness", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        def step() -> bool:
            self.beat()
            return False
        try:
            run_loop("worker-liveness", step, stop=self._stop, idle_wait=self.interval,
                     max_crashes=MAX_FAILED_BEATS, backoff=self.interval, max_backoff=self.interval)
        except LoopCrashed:
            log.critical("worker %s: cannot renew its liveness record; stopping the worker", self.worker)
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        """Stop beating and remove the record."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        try:
            self.liveness.leave()
        except Exception as exc:  # noqa: BLE001 - the record lapses by itself
            log.info("worker %s: could not remove its liveness record: %s", self.worker, exc)

    # --- a delivery's check before it creates -----------------------------------------------------

    def may_create(self, job_id: str, token: str, *, epoch: int) -> bool:
        """True when the delivery ``token`` (claimed in ``epoch``) still holds ``job_id``.

        Cheap while beats keep coming: a record renewed less than half a TTL ago, with no
        lapse since the claim, cannot have been voided. Otherwise the claim is checked, and the
        record renewed, in one atomic step in Redis.
        """
        if epoch == self.epoch and time.monotonic() - self._confirmed_at < self.liveness.ttl / 2:
            return True
        return self.liveness.hold(job_id, token)
