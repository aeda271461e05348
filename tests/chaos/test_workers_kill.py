"""Chaos: worker processes killed with SIGKILL mid-create; still exactly one create per job.

300 jobs, kubesim creates slowed to 200 ms, two ``podq worker`` processes; one
is killed (SIGKILL) twice while it has creates in flight and restarted each
time, the other stays up. The killed worker's unacknowledged messages come back
after the 5 s visibility timeout; the ledger and the deterministic pod names
make every replay resolve to the pod that already exists.
"""
from __future__ import annotations

import signal
import time

from podq.broker.intake.housekeeping import release_due
from podq.broker.store.ledger import Ledger
from podq.shared.states import State
from tests.support import stop_process
from tests.support.workers import NAMESPACE, admit, make_job, pod_name, results, start_worker_process, worker_env

JOBS = 300


def test_sigkill_twice_with_creates_in_flight_gives_one_create_per_job(redis_client, redis_url, kubesim, tmp_path):
    admin = kubesim.admin()
    admin.set_latency("create", seconds=0.2, jitter=0.05)
    jobs = [make_job(n, run_seconds=600) for n in range(JOBS)]
    env = worker_env(redis_url, kubesim.kubeconfig, PODQ_WORKER_CONCURRENCY="2", PODQ_WORKER_VISIBILITY_TIMEOUT="5",
                     PODQ_KUBE_REQUEST_TIMEOUT="1", PODQ_WORKER_CREATE_RATE="30", PODQ_WORKER_CREATE_BURST="10")
    survivor = start_worker_process(env, "survivor", tmp_path)
    victim = start_worker_process(env, "victim-0", tmp_path)
    ledger = Ledger(redis_client)
    kills = []
    try:
        admit(redis_client, jobs)
        deadline = time.monotonic() + 100
        for round_, threshold in enumerate((70, 170), start=1):
            while admin.create_count(namespace=NAMESPACE) < threshold:
                assert time.monotonic() < deadline, "creates stalled"
                time.sleep(0.05)
            in_flight = admin.stats().get("inFlight")
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills.append((threshold, in_flight))
            victim = start_worker_process(env, f"victim-{round_}", tmp_path)
        while True:
            states = [entry.state.value if (entry := ledger.get(job.job_id)) and entry.state else None
                      for job in jobs]
            if all(state == "created" for state in states):
                break
            release_due(redis_client)
            assert survivor.poll() is None, "the surviving worker died"
            if time.monotonic() > deadline:
                stuck = [job for job, state in zip(jobs, states) if state != "created"]
                info = {"queue": redis_client.llen("podq.pods"), "unacked": redis_client.hlen("unacked"),
                        "index": redis_client.zrange("unacked_index", 0, -1, withscores=True)[:3],
                        "delayed": redis_client.zcard("podq:delayed"), "stuck": len(stuck),
                        "ledger": redis_client.hgetall(f"podq:job:{stuck[0].job_id}"),
                        "creates": admin.create_count(name_prefix=pod_name(stuck[0])), "now": time.time()}
                raise AssertionError(f"not all created: {info}")
            time.sleep(0.2)
    finally:
        stop_process(victim)
        stop_process(survivor)
    assert len(kills) == 2
    log = admin.creates(namespace=NAMESPACE)
    names = [entry["name"] for entry in log]
    assert len(names) == JOBS and sorted(names) == sorted(pod_name(job) for job in jobs)
    uids = {entry["name"]: entry["uid"] for entry in log}
    assert all(ledger.get(job.job_id).uid == uids[pod_name(job)] for job in jobs)
    # No job ended on the worker side: no failed (or other terminal) result was published.
    assert [r for r in results(redis_client) if r.state.terminal] == []
    assert {r.state for r in results(redis_client)} <= {State.PENDING, State.RUNNING}
