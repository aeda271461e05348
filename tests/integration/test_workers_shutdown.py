"""A worker told to stop (SIGTERM, as Kubernetes does on scale-down or eviction) finishes or
hands back every create it holds: nothing waits for the visibility timeout.

The visibility timeout is 120 s here, longer than each test's deadline, so a message the
stopped worker kept unacknowledged would make the test fail rather than come back late.
"""
from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from typing import Iterator

from podq.broker.intake.housekeeping import release_due
from podq.broker.store import keys
from podq.broker.store.ledger import Ledger
from tests.support.workers import NAMESPACE, admit, make_job, pod_name, start_worker_process, worker_env
from tests.support import wait_for


def _env(redis_url: str, kubeconfig: str) -> dict[str, str]:
    return worker_env(redis_url, kubeconfig, PODQ_WORKER_CONCURRENCY="2", PODQ_WORKER_VISIBILITY_TIMEOUT="120",
                      PODQ_KUBE_REQUEST_TIMEOUT="5", PODQ_WORKER_CREATE_RATE="0")


def _terminate(process: subprocess.Popen, *, within: float) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"the worker did not stop within {within} s of SIGTERM") from None


def _all_created(client, jobs) -> bool:
    ledger = Ledger(client)
    release_due(client)
    return all((entry := ledger.get(job.job_id)) and entry.state and entry.state.value == "created" for job in jobs)


@contextlib.contextmanager
def _worker(env: dict[str, str], name: str, log_dir) -> Iterator[subprocess.Popen]:
    """A `podq worker` process, killed at the end if the test has not stopped it."""
    process = start_worker_process(env, name, log_dir)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _a_successor_creates_them_all(env: dict[str, str], log_dir, client, jobs) -> None:
    with _worker(env, "successor", log_dir):
        wait_for(lambda: _all_created(client, jobs), timeout=60, message="every job created")


def test_sigterm_lets_running_creates_finish_and_returns_the_rest(redis_client, redis_url, kubesim, tmp_path):
    admin = kubesim.admin()
    admin.set_latency("create", seconds=1.5)
    jobs = [make_job(n, run_seconds=600) for n in range(16)]  # 4 messages of 4 jobs; 2 threads take 2
    env = _env(redis_url, kubesim.kubeconfig)
    with _worker(env, "leaving", tmp_path) as worker:
        admit(redis_client, jobs)
        wait_for(lambda: admin.stats().get("inFlight", 0) > 0, timeout=60, message="creates in flight")
        assert _terminate(worker, within=30) == 0
    # Nothing is held by the stopped worker: every message was acked (its creates done) or is
    # back in the queue, none sits in kombu's unacked table waiting for the visibility timeout.
    assert redis_client.hlen("unacked") == 0
    finished = admin.create_count(namespace=NAMESPACE)
    assert finished >= 1
    assert redis_client.llen(keys.CELERY_QUEUE) * 4 + finished == len(jobs)
    admin.clear_latency()
    _a_successor_creates_them_all(env, tmp_path, redis_client, jobs)
    names = [entry["name"] for entry in admin.creates(namespace=NAMESPACE)]
    assert sorted(names) == sorted(pod_name(job) for job in jobs)


def test_sigterm_hands_a_retrying_create_back_through_the_delayed_set(redis_client, redis_url, kubesim, tmp_path):
    admin = kubesim.admin()
    rule = admin.add_fault(action="503", verb="create")
    jobs = [make_job(n, run_seconds=600) for n in range(4)]  # one message
    env = _env(redis_url, kubesim.kubeconfig)  # retry budget: 40 s (a third of the visibility timeout)
    with _worker(env, "retrying", tmp_path) as worker:
        admit(redis_client, jobs)
        wait_for(lambda: any(f["id"] == rule and f["fired"] >= 8 for f in admin.faults()), timeout=60,
                 message="creates retrying on 503")
        started = time.monotonic()
        assert _terminate(worker, within=30) == 0
        assert time.monotonic() - started < 15, "the worker sat out its retry budget instead of handing back"
    assert redis_client.hlen("unacked") == 0
    assert redis_client.zcard(keys.DELAYED_ZSET) == len(jobs)
    assert admin.create_count(namespace=NAMESPACE) == 0
    admin.clear_faults()
    _a_successor_creates_them_all(env, tmp_path, redis_client, jobs)
    assert admin.create_count(namespace=NAMESPACE) == len(jobs)
