"""The watcher daemon: leases, one list+watch loop per led scope, the reconciler, health.

``Watcher(settings, namespaces=[...])`` (or ``all_namespaces=True``) runs in
the calling process: :meth:`Watcher.start` starts its threads, :meth:`Watcher.stop`
ends them, :meth:`Watcher.run` blocks until stopped and returns the exit code
(non-zero when a loop crashed too often). Tests use it in-process; ``podq
watcher`` (:mod:`podq.watcher.main`) wraps it for a process of its own.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Sequence

from podq.broker.store.connection import connect, ping
from podq.broker.store.gauges import INTERVAL as FIGURES_INTERVAL
from podq.broker.store.gauges import LIVENESS_TTL, GaugeRefresher
from podq.broker.store.liveness import Presence
from podq.shared import clusters, loops, metrics
from podq.shared.loops import LoopCrashed, run_loop
from podq.shared.settings import Settings

from .errors import WatcherError
from .health import Health, check_report, default_health_file, progress_limit
from .kube import KubePods
from .lease import LeaseKeeper
from .publishing import Broker, Scope
from .reconciler import Reconciler
from .scope import ScopeRunner

log = logging.getLogger(__name__)

# The adapter's methods and the API verbs they count as (podq_kube_requests_total).
WATCHER_VERBS = {"list_page": "list", "watch": "watch", "exists": "get", "label_revoked": "patch"}
# The answers the watcher meets besides success, and 0 (no answer): its request series from start-up.
WATCHER_CODES = (0, 403, 404, 410, 429, 500, 503, 504)
# Watch event types (podq_watch_events_total's type label).
EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")


def initialise_metrics(scopes: Sequence[str]) -> None:
    """Every series of the watcher's scope-labelled metrics, at 0, from start-up."""
    metrics.initialise(metrics.WATCH_EVENTS, scopes, EVENT_TYPES)
    for family in (metrics.WATCH_RELISTS, metrics.WATCH_EXPIRED, metrics.WATCH_RECONNECTS, metrics.WATCHER_TAKEOVERS,
                   metrics.WATCHER_FENCED, metrics.WATCHER_LEADER, metrics.JOBS_STUCK):
        metrics.initialise(family, scopes)


def scopes_for(settings: Settings, namespaces: Sequence[str] = (), *, all_namespaces: bool = False) -> list[Scope]:
    """The scopes to watch in the cluster of ``settings`` (:func:`podq.shared.clusters.settings_for`):
    the given namespaces, else the settings', else the default namespace."""
    chosen = list(namespaces) or list(settings.watcher.namespaces)
    place = {"cluster": clusters.canonical(settings, settings.kube.cluster), "cluster_name": settings.kube.cluster}
    if all_namespaces or "*" in chosen:
        return [Scope.of(None, **place)]
    chosen = chosen or [settings.kube.namespace]
    return [Scope.of(namespace, **place) for namespace in dict.fromkeys(chosen)]


class Watcher:
    """One watcher replica."""

    def __init__(self, settings: Settings, *, namespaces: Sequence[str] = (), all_namespaces: bool = False,
                 redis_url: str | None = None, instance: str | None = None, health_file: str | None = None,
                 cluster: str | None = None) -> None:
        """``cluster``: the name of the cell's cluster to watch (default: the one ``settings`` are for,
        the default cluster unless they come from :func:`podq.shared.clusters.settings_for`)."""
        settings = clusters.settings_for(settings, cluster or settings.kube.cluster)
        self.settings = settings
        self.cluster = clusters.canonical(settings, settings.kube.cluster)
        self.scopes = scopes_for(settings, namespaces, all_namespaces=all_namespaces)
        url = redis_url or settings.redis.url
        if not url:
            raise WatcherError("no Redis URL (PODQ_REDIS_URL)")
        self.instance = instance or settings.watcher.instance or f"{socket.gethostname()}-{os.getpid()}"
        self._client = connect(url, settings=settings.redis)
        self.broker = Broker.open(self._client, ledger_ttl=settings.redis.ledger_ttl, cluster=self.cluster)
        self.kube = metrics.Metered(KubePods(settings.kube, settings.watcher), WATCHER_VERBS, codes=WATCHER_CODES,
                                    cluster=settings.kube.cluster)
        names = [scope.name for scope in self.scopes]
        initialise_metrics(names)
        self.health = Health(health_file or settings.watcher.health_file or default_health_file(names),
                             instance=self.instance)
        self.runners: dict[str, ScopeRunner] = {}
        self._runners_lock = threading.Lock()
        self.stopping = threading.Event()
        self.failed: str | None = None
        self.lease = LeaseKeeper(self.broker.store, scopes=names, holder=self.instance, ttl=settings.watcher.lease_ttl,
                                 poll=settings.watcher.lease_poll, on_gain=self._gain, on_loss=self._loss)
        self.reconciler = Reconciler(broker=self.broker, kube=self.kube, settings=settings.watcher,
                                     default_namespace=settings.kube.namespace, runners=self.led,
                                     cluster=self.cluster)
        # This replica's liveness record and the Redis-read gauges, also published by intake: either
        # kind of process down, the other still publishes what the alerts need.
        self.figures = GaugeRefresher(self._client, presence=Presence(self._client, role="watcher",
                                                                      instance=self.instance, ttl=LIVENESS_TTL))
        self._threads: list[threading.Thread] = []

    def ping(self) -> object:
        """One round trip to Redis (the metrics' probe)."""
        return ping(self._client)

    # -- leadership ----------------------------------------------------------------------------
    def _gain(self, scope: str, token: str) -> None:
        target = next(item for item in self.scopes if item.name == scope)
        runner = ScopeRunner(scope=target, token=token, broker=self.broker, kube=self.kube,
                             settings=self.settings.watcher, health=self.health,
                             default_namespace=self.settings.kube.namespace)
        with self._runners_lock:
            self.runners[scope] = runner
        self.health.leading(scope, True)
        runner.start()

    def _loss(self, scope: str) -> None:
        metrics.JOBS_STUCK.labels(scope).set(0)     # the new leader counts them
        with self._runners_lock:
            runner = self.runners.pop(scope, None)
        self.health.leading(scope, False)
        if runner is not None:
            runner.close()

    def led(self) -> list[ScopeRunner]:
        with self._runners_lock:
            return list(self.runners.values())

    def leads(self, scope: str | None = None) -> bool:
        with self._runners_lock:
            return bool(self.runners) if scope is None else scope in self.runners

    # -- loops ---------------------------------------------------------------------------------
    def _lease_step(self) -> bool:
        for runner in self.led():
            if runner.crashed:
                self._fail(f"the watch loop of scope {runner.scope.name} crashed too often")
                return True
            if runner.fenced:
                self.lease.lose(runner.scope.name)
        self.lease.step()
        return False

    def _guarded(self, name: str, step, *, interval: float) -> None:
        try:
            run_loop(name, step, stop=self.stopping, max_crashes=self.settings.watcher.max_crashes,
                     idle_wait=interval, max_backoff=max(interval, 5.0))
        except LoopCrashed as exc:
            self._fail(str(exc))

    def _reconcile_step(self) -> bool:
        self.reconciler.step()
        return False

    def _figures_step(self) -> bool:
        self.figures.maybe_run()
        return False

    def _health_step(self) -> bool:
        self.health.write()
        return False

    def live(self) -> tuple[bool, str]:
        """This process's liveness (GET /healthz): its lease and health loops step, and every scope it
        leads makes progress; no Redis call (a Redis blip must not restart the watcher)."""
        healthy, why = loops.health(["watcher-lease", "watcher-health"])
        if not healthy:
            return healthy, why
        return check_report(self.health.snapshot(), progress_limit=progress_limit(self.settings.watcher))

    def _fail(self, why: str) -> None:
        log.error("watcher %s: %s; stopping", self.instance, why)
        self.failed = why
        self.stopping.set()

    def start(self) -> "Watcher":
        watcher = self.settings.watcher
        loops = [("watcher-lease", self._lease_step, watcher.lease_poll),
                 ("watcher-reconciler", self._reconcile_step, watcher.reconcile_interval),
                 ("watcher-health", self._health_step, 1.0),
                 ("watcher-figures", self._figures_step, FIGURES_INTERVAL / 2)]
        for name, step, interval in loops:
            thread = threading.Thread(target=self._guarded, args=(name, step), kwargs={"interval": interval},
                                      name=f"podq-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("watcher %s started for %s", self.instance, ", ".join(scope.name for scope in self.scopes))
        return self

    def run(self) -> int:
        """Block until stopped (signal, :meth:`stop`, or a loop that gave up); the exit code."""
        self.stopping.wait()
        self.close()
        return 1 if self.failed else 0

    def stop(self) -> None:
        self.stopping.set()

    def close(self, *, release: bool = True) -> None:
        """Stop every loop; ``release=False`` keeps the leases (as a killed process would)."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(10.0)
        for runner in self.led():
            runner.close()
        if release:
            self.lease.release_all()
        else:
            for scope in list(self.lease.tokens):
                self.lease.tokens.pop(scope, None)
                self._loss(scope)
        self.health.remove()
        if release:
            self.figures.leave()
        self.kube.close()
        self._client.close()

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
