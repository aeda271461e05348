"""The cluster-wide create rate limit across two ``podq worker`` processes, read from kubesim's create log."""
from __future__ import annotations

import subprocess
import time

import pytest

from podq.broker.intake.housekeeping import release_due
from podq.broker.store.delayed import delay_job
from podq.broker.store.ratelimit import CreateRateLimit
from podq.broker.store import keys
from tests.support import wait_for
from tests.support.workers import NAMESPACE, admit, ledger_state, make_job, pod_name, start_worker_process, worker_env

RATE, BURST = 20.0, 5


def max_excess(times: list[float], *, rate: float, burst: int) -> float:
    """The largest ``count - (rate × w + burst)`` over every window between two creates."""
    times = sorted(times)
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (rate * (times[j] - times[i]) + burst))
    return worst


def test_two_worker_processes_share_one_create_rate(redis_client, redis_url, kubesim, tmp_path):
    jobs = [make_job(n) for n in range(80)]
    env = worker_env(redis_url, kubesim.kubeconfig, PODQ_WORKER_CREATE_RATE=str(RATE),
                     PODQ_WORKER_CREATE_BURST=str(BURST))
    workers = [start_worker_process(env, f"w{n}", tmp_path) for n in range(2)]
    try:
        admit(redis_client, jobs)
        deadline = time.monotonic() + 60
        while not all(ledger_state(redis_client, job) == "created" for job in jobs):
            release_due(redis_client)   # intake's periodic step: waits past a delivery's budget come back here
            assert time.monotonic() < deadline, "jobs not created in time"
            assert all(w.poll() is None for w in workers), "a worker exited"
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    log = kubesim.admin().creates(namespace=NAMESPACE)
    assert sorted(entry["name"] for entry in log) == sorted(pod_name(job) for job in jobs)
    # Arrival times at the server include request jitter, so allow one create of slack.
    assert max_excess([entry["time"] for entry in log], rate=RATE, burst=BURST) <= 1.0


def test_token_bucket_reservations(redis_client):
    limit = CreateRateLimit(redis_client, rate=10.0, burst=3)
    grants = [limit.reserve(max_wait=10) for _ in range(6)]
    assert all(g.granted for g in grants)
    assert [round(g.wait, 1) for g in grants[:3]] == [0.0, 0.0, 0.0]
    assert grants[5].wait == pytest.approx(0.3, abs=0.05)
    refused = limit.reserve(max_wait=0.1)
    assert not refused.granted and refused.wait > 0.1
    assert CreateRateLimit(redis_client, rate=0, burst=1).reserve(max_wait=0).granted


def test_delayed_set_releases_due_jobs_once(redis_client):
    job = make_job(1)
    admit(redis_client, [job])
    redis_client.delete(keys.CELERY_QUEUE)
    assert delay_job(redis_client, job_id=job.job_id, payload=job.encode(), delay=60) == 1
    assert release_due(redis_client) == 0
    assert release_due(redis_client, now=time.time() + 61) == 1
    assert release_due(redis_client, now=time.time() + 120) == 0
    assert redis_client.llen(keys.CELERY_QUEUE) == 1
    assert redis_client.zcard(keys.DELAYED_ZSET) == 0
    wait_for(lambda: True)
