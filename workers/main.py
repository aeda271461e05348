"""``podq worker``: a Celery worker consuming ``podq.pods`` with a threads pool.

Importing this module starts nothing; :func:`main` does.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import threading

from podq.broker.store import keys
from podq.broker.store.connection import ping
from podq.shared import clusters, loops, metrics
from podq.shared.errors import PodqError, SettingsError
from podq.shared.settings import Settings
from podq.shared.secrets import scrub

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podq worker", description="Create pods for podq's jobs (a Celery worker).")
    parser.add_argument("--concurrency", "-c", type=int, help="Celery threads, each holding one message (default PODQ_WORKER_CONCURRENCY)")
    parser.add_argument("--hostname", "-n", help="Celery node name (default podq-worker-<pid>@<host>)")
    parser.add_argument("--loglevel", "-l", default="info", help="Celery's log level (default info)")
    parser.add_argument("--cluster", action="append", default=[], metavar="NAME",
                        help="create pods in this cluster of the cell (repeat, or a,b); default: every cluster "
                             "(PODQ_KUBE_CLUSTER and PODQ_KUBE_CLUSTERS)")
    parser.add_argument("--check", action="store_true",
                        help="check Redis, the cluster config and the templates, then exit 0 or 1")
    return parser


def main(argv: list[str] | None, settings: Settings) -> int:
    """Run a worker until it is stopped; returns the process exit code."""
    from podq.broker.queue.app import make_celery
    from podq.broker.store.connection import ping

    from .create import initialise_metrics
    from .liveness import worker_id
    from .runtime import build_runtimes, message_threads
    from .tasks import register_tasks

    args = build_parser().parse_args(argv or [])
    if args.concurrency:
        settings = dataclasses.replace(settings, worker=dataclasses.replace(settings.worker,
                                                                            concurrency=args.concurrency))
    hostname = args.hostname or f"podq-worker-{os.getpid()}@{socket.gethostname()}"
    try:
        threads = message_threads(settings)
        served = served_clusters(settings, args.cluster)
        runtimes = build_runtimes(settings, served, worker=worker_id(hostname))
        runtime = runtimes[served[0]]
        if args.check:
            ping(runtime.client)
            runtime.templates.get(None)
            close_all(runtimes)
            return 0
    except PodqError as exc:
        print(f"podq worker: {scrub(str(exc))}")
        return 2
    except Exception as exc:  # noqa: BLE001 - a start-up failure is reported, not traced
        print(f"podq worker: cannot start: {type(exc).__name__}: {scrub(str(exc))}")
        return 1
    app = make_celery(broker_url=settings.redis.url, worker=settings.worker, redis=settings.redis)
    register_tasks(app, runtimes)
    # Celery's worker heartbeat stays on (one event every 2 s): it keeps the event dispatcher alive,
    # so Flower or `celery control enable_events` can turn task events on while they watch; task
    # events themselves are off until asked for (worker_send_task_events).
    worker = app.Worker(hostname=hostname, queues=[keys.celery_queue(cluster) for cluster in served],
                        pool_cls="threads",
                        concurrency=threads, loglevel=args.loglevel.upper(),
                        without_gossip=True, without_mingle=True, without_heartbeat=False, optimization="fair")
    quiet_task_lines(args.loglevel)
    runtime.heartbeat.attach(app)
    stop_creates_on_shutdown(hostname, runtime)
    probe_stop = threading.Event()
    for cluster in runtimes.values():
        initialise_metrics(cluster.settings.kube.cluster)
    metrics.start(settings.metrics, service=f"worker {hostname}", ping=lambda: ping(runtime.client), stop=probe_stop,
                  health=lambda: loops.health(["worker-liveness"]))
    try:
        runtime.heartbeat.start()
        worker.start()
    finally:
        probe_stop.set()
        close_all(runtimes)
    return worker.exitcode or 0


def served_clusters(settings: Settings, chosen: list[str]) -> list[str | None]:
    """The clusters a worker serves, as records hold them (None: the default); raises SettingsError
    for a name that is not one of the cell's."""
    known = clusters.names(settings)
    names = [name.strip() for item in chosen for name in item.split(",") if name.strip()] or list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SettingsError(f"--cluster {unknown[0]!r} is not a cluster of this cell (clusters: {', '.join(known)}; "
                            "PODQ_KUBE_CLUSTERS)")
    return list(dict.fromkeys(clusters.canonical(settings, name) for name in names))


def close_all(runtimes) -> None:
    # The further clusters' runtimes first: the first one closes the Redis client they share.
    for runtime in reversed(list(runtimes.values())):
        runtime.close()


def quiet_task_lines(loglevel: str) -> None:
    """No line per message ("Task podq.create_pod[...] succeeded in ...") unless the level is debug.

    At full rate that is hundreds of lines a second saying nothing podq's own log and metrics do not
    (a job's failure is logged by podq and published as its result; a crashed message is logged with
    its traceback at ERROR, which stays on).
    """
    if logging.getLevelName(loglevel.upper()) != logging.DEBUG:
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)


def stop_creates_on_shutdown(hostname: str, runtime) -> None:
    """On SIGTERM/SIGINT Celery stops consuming and waits for running tasks (a warm shutdown);
    messages reserved but not started go back to the queue when the connection closes. This
    makes running creates stop retrying in place: a job that would wait for a retry goes back
    through the delayed set, so the shutdown ends within one API request timeout."""
    from celery.signals import worker_shutting_down

    def on_shutdown(sender=None, **_kwargs):
        log.info("worker %s shutting down: running creates finish, retries are handed back", sender)
        runtime.stopping.set()

    worker_shutting_down.connect(on_shutdown, sender=hostname, weak=False)
