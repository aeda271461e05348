"""Helpers for the workers' integration and chaos tests: real Valkey, real kubesim, real Celery.

Nothing of podq is replaced: jobs enter through the ledger and broker.dispatch
exactly as intake hands them over, workers are Celery workers consuming the queue
(in this process through pytest-celery's fixtures, see :func:`podq_worker`, or as
``podq worker`` processes), and kubesim answers over HTTP.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
from typing import Iterator, Sequence

import msgpack
import pytest
from celery.contrib.testing.worker import start_worker

from podq.broker.control.sender import ControlSender
from podq.broker.intake.housekeeping import release_due
from podq.broker.queue.app import celery_config
from podq.broker.queue.envelopes import CREATE_TASK, dispatch_jobs
from podq.broker.store import keys
from podq.broker.store.ledger import Ledger
from podq.shared import naming
from podq.shared.records import ControlRecord, KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import KubeSettings, RedisSettings, Settings, WorkerSettings, load_settings
from podq.shared.states import ControlOp
from podq.workers.runtime import Runtime, build_runtime, message_threads
from podq.workers.tasks import register_tasks

SCHEDULER = "sched-a"
NAMESPACE = "podq"


def make_settings(redis_url: str, kubeconfig: str, *, templates_dir: str | None = None, **worker) -> Settings:
    """Settings for a test worker: 5 s visibility timeout, short API timeouts, no rate limit unless asked."""
    base = load_settings({})
    worker_fields = {"concurrency": 4, "visibility_timeout": 5.0, "create_rate": 0.0, **worker}
    return dataclasses.replace(
        base, redis=RedisSettings(url=redis_url),
        kube=KubeSettings(kubeconfig=kubeconfig, namespace=NAMESPACE, request_timeout=0.5),
        intake=dataclasses.replace(base.intake, templates_dir=templates_dir, jobs_per_message=4),
        worker=WorkerSettings(**worker_fields))


def make_job(n: int, *, scheduler_id: str = SCHEDULER, run_seconds: float | None = None, **fields) -> KubernetesJob:
    key = TaskKey(dag_id="dag", task_id=f"task-{n}", run_id="run-1", try_number=1)
    if run_seconds is not None:
        override = fields.setdefault("pod_override", {})
        override.setdefault("metadata", {}).setdefault("annotations", {})["kubesim.podq.io/run-seconds"] = str(run_seconds)
    return KubernetesJob.new(scheduler_id=scheduler_id, key=key, command=["echo", str(n)],
                             namespace=fields.pop("namespace", NAMESPACE), **fields)


def pod_name(job: KubernetesJob) -> str:
    return naming.pod_name_for(job.job_id, job.key)


def admit(client, jobs: Sequence[KubernetesJob], *, per_message: int = 4) -> None:
    """What intake does for admitted jobs: ledger, Celery envelopes, dispatched."""
    ledger = Ledger(client)
    ledger.accept_many([(job, pod_name(job)) for job in jobs])
    dispatch_jobs(client, [job.encode() for job in jobs], per_message=per_message)
    ledger.mark_dispatched([job.job_id for job in jobs])


def celery_jobs(client) -> list[bytes]:
    """Every job payload sitting in the Celery queue, decoded from the envelopes."""
    payloads = []
    for raw in client.lrange(keys.CELERY_QUEUE, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == CREATE_TASK
        args, _kwargs, _embed = msgpack.unpackb(base64.b64decode(message["body"]), raw=False)
        payloads.extend(args[0])
    return payloads


def redeliver(client, jobs: Sequence[KubernetesJob], *, per_message: int = 4) -> None:
    """Push the same jobs' messages again (a duplicate delivery)."""
    dispatch_jobs(client, [job.encode() for job in jobs], per_message=per_message)


def control(client, op: ControlOp, *, job_id: str | None = None, scheduler_id: str = SCHEDULER, **fields) -> None:
    record = ControlRecord(op=op, scheduler_id=scheduler_id, job_id=job_id, **fields)
    ControlSender(client).send([record])


def results(client, scheduler_id: str = SCHEDULER) -> list[KubernetesWatch]:
    return [KubernetesWatch.decode(fields[b"record"])
            for _, fields in client.xrange(keys.results_stream(scheduler_id))]


def results_for(client, job: KubernetesJob, scheduler_id: str = SCHEDULER) -> list[KubernetesWatch]:
    return [r for r in results(client, scheduler_id) if r.job_id == job.job_id]


def ledger_state(client, job: KubernetesJob) -> str | None:
    entry = Ledger(client).get(job.job_id)
    return entry.state.value if entry and entry.state else None


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    """pytest-celery's pool fixture: podq's workers run Celery's threads pool, and so do the tests'."""
    return "threads"


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict:
    """pytest-celery's worker options: podq's queue, no ping task (podq registers none), a bounded stop."""
    return {"queues": [keys.CELERY_QUEUE], "perform_ping_check": False, "shutdown_timeout": 15,
            "loglevel": "WARNING"}


@pytest.fixture
def podq_worker(celery_app, celery_worker_pool, celery_worker_parameters):
    """``with podq_worker(settings) as runtime``: podq's tasks in a real Celery worker in this process.

    The app is pytest-celery's ``celery_app`` (Celery's TestApp, set up and torn down by the plugin)
    given production's configuration (:func:`podq.broker.queue.app.celery_config`) for ``settings``;
    the worker is the one Celery's in-process ``celery_worker`` fixture starts
    (``celery.contrib.testing.worker.start_worker``), with the plugin's pool and parameter fixtures.
    pytest-celery 1.x gives the name ``celery_worker`` to its Docker-based worker, hence this one.
    One worker per test: the tasks are bound to the first call's runtime.
    """
    started: list[Runtime] = []

    @contextlib.contextmanager
    def start(settings: Settings, *, concurrency: int | None = None) -> Iterator[Runtime]:
        assert not started, "one podq_worker per test"
        celery_app.conf.update(celery_config(broker_url=settings.redis.url, worker=settings.worker))
        runtime = build_runtime(settings)
        started.append(runtime)
        register_tasks(celery_app, runtime)
        try:
            with start_worker(celery_app, pool=celery_worker_pool,
                              concurrency=concurrency or message_threads(settings), **celery_worker_parameters):
                yield runtime
        finally:
            runtime.close()
    return start


@contextlib.contextmanager
def releasing(client, *, interval: float = 0.05) -> Iterator[None]:
    """Run the delayed set's release (intake's periodic step) in a background thread."""
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            release_due(client)
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="release-due", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def worker_env(redis_url: str, kubeconfig: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODQ_")}
    env.update({"PODQ_REDIS_URL": redis_url, "PODQ_KUBE_KUBECONFIG": kubeconfig, "PODQ_KUBE_NAMESPACE": NAMESPACE,
                "PODQ_KUBE_REQUEST_TIMEOUT": "2", "PODQ_WORKER_VISIBILITY_TIMEOUT": "6",
                "PODQ_WORKER_CONCURRENCY": "8", **extra})
    return env


PODQ = "import sys; from podq.cli import main; sys.exit(main(sys.argv[1:]))"


def start_worker_process(env: dict[str, str], name: str, log_dir, *, loglevel: str = "warning") -> subprocess.Popen:
    """``podq worker`` as a process of its own; its log goes to ``log_dir/<name>.log``."""
    with open(f"{log_dir}/{name}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-c", PODQ, "worker", "-n", f"{name}@test", "-l", loglevel],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
