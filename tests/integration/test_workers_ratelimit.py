"""The cluster's shared create budget: its ceiling across two ``podq worker`` processes, its
reservations, its shared pause, and its controller moved by real 429s from kubesim.

What the ceiling controls is when each create may start: its slot, granted by the shared bucket
in Redis and logged by the worker that took it. Those slots must keep to ``rate × w + burst``
in every window. When a create then reaches the API server depends on the machine (a busy
worker sends late, and late creates bunch up at the server), so arrivals are only checked
against what follows from the slots: no pod arrives before its slot, and all of them together
take at least as long as the rate allows.
"""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from podq.broker.intake.housekeeping import release_due
from podq.broker.store.delayed import delay_job
from podq.broker.store.ratelimit import BudgetState, CreateBudget, budget_states
from podq.broker.store import keys
from podq.shared.metrics import REGISTRY
from podq.workers.budget import THROTTLED, BudgetFeedback, Law
from tests.support import wait_for
from tests.support.workers import (NAMESPACE, admit, ledger_state, make_job, make_settings, pod_name, releasing,
                                   results_for, start_worker_process, worker_env)

RATE, BURST = 20.0, 5
SLOT_LINE = re.compile(r"job (\S+): create slot (\d+\.\d+) ")


def max_excess(times: list[float], *, rate: float, burst: int) -> float:
    """The largest ``count - (rate × w + burst)`` over every window between two creates."""
    times = sorted(times)
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (rate * (times[j] - times[i]) + burst))
    return worst


def logged_slots(log: Path) -> list[tuple[str, float]]:
    """``(job_id, slot)`` of every create slot a worker's debug log names."""
    return [(m.group(1), float(m.group(2))) for m in SLOT_LINE.finditer(log.read_text(errors="replace"))]


def test_two_worker_processes_share_one_create_rate(redis_client, redis_url, kubesim, tmp_path):
    jobs = [make_job(n) for n in range(80)]
    env = worker_env(redis_url, kubesim.kubeconfig, PODQ_WORKER_CREATE_RATE=str(RATE),
                     PODQ_WORKER_CREATE_BURST=str(BURST))
    workers = [start_worker_process(env, f"w{n}", tmp_path, loglevel="debug") for n in range(2)]
    try:
        # Both consume before the first job is queued, so both take slots from the one bucket.
        wait_for(lambda: all(" ready." in (tmp_path / f"w{n}.log").read_text(errors="replace") for n in range(2)),
                 timeout=60, message="both workers ready")
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

    # The limit's guarantee, on what it controls: every slot granted to either worker, in one budget.
    per_worker = [logged_slots(tmp_path / f"w{n}.log") for n in range(2)]
    assert all(per_worker), "each worker took slots from the shared bucket"
    slots = [slot for taken in per_worker for _, slot in taken]
    assert len(slots) >= len(jobs)
    assert max_excess(slots, rate=RATE, burst=BURST) <= 0.01   # slots are kept and logged to the microsecond

    # Arrivals (kubesim's clock is the same machine's as Redis's): no pod before its job's slot...
    first_slot: dict[str, float] = {}
    for job_id, slot in sorted(pair for taken in per_worker for pair in taken):
        first_slot.setdefault(job_id, slot)
    arrival = {entry["name"]: entry["time"] for entry in log}
    early = [(job.job_id, first_slot.get(job.job_id), arrival[pod_name(job)]) for job in jobs
             if job.job_id not in first_slot or arrival[pod_name(job)] < first_slot[job.job_id] - 0.001]
    assert not early, f"created before (or without) a slot: {early[:5]}"
    # ...so all of them together cannot have arrived faster than the rate allows.
    span = max(arrival.values()) - min(slots)
    created = len(log)
    assert created <= RATE * span + BURST, f"{created} creates arrived within {span:.2f} s"


def test_budget_reservations(redis_client):
    budget = CreateBudget(redis_client, cluster="default", ceiling=100.0, start=20.0, burst=3)
    grants = [budget.reserve(max_wait=10) for _ in range(6)]
    assert all(g.granted for g in grants) and {g.rate for g in grants} == {20.0}
    assert [round(g.wait, 2) for g in grants[:3]] == [0.0, 0.0, 0.0]
    assert grants[5].wait == pytest.approx(0.15, abs=0.03)
    # Once the burst is spent, slots are 1/rate apart by the budget's clock, however late the calls came.
    assert grants[5].slot - grants[4].slot == pytest.approx(0.05, abs=0.001)
    refused = budget.reserve(max_wait=0.1)
    assert not refused.granted and refused.wait > 0.1
    assert CreateBudget(redis_client, cluster="default", ceiling=0, start=1, burst=1).reserve(max_wait=0).granted
    # A wait means demand met the budget: the reservations say so for the controller.
    state, _ = budget.read()
    assert state.limited_at > 0 and state.version == 0


def test_a_pause_holds_every_reservation_and_a_write_is_a_compare_and_set(redis_client):
    budget = CreateBudget(redis_client, cluster="east", ceiling=100.0, start=50.0, burst=5)
    state, now = budget.read()
    paused = BudgetState(rate=50.0, pause_until=now + 0.6, reason="throttled")
    assert budget.write(state, paused)
    assert not budget.write(state, paused), "a second write from the same read loses"
    other = CreateBudget(redis_client, cluster="east", ceiling=100.0, start=50.0, burst=5)   # another worker
    first = other.reserve(max_wait=5)
    assert first.granted and first.wait == pytest.approx(0.6, abs=0.05)
    assert budget_states(redis_client)["east"].pause_until == pytest.approx(now + 0.6)
    assert budget.reserve(max_wait=0.1).granted is False


def test_429s_seen_by_one_worker_cut_the_budget_and_pause_the_others(redis_client):
    law = Law(ceiling=1000.0, start=400.0)
    mine = BudgetFeedback(CreateBudget(redis_client, cluster="default", ceiling=1000.0, start=400.0, burst=50), law,
                          interval=0.0)
    theirs = CreateBudget(redis_client, cluster="default", ceiling=1000.0, start=400.0, burst=50)
    for _ in range(3):
        mine.observe(THROTTLED, retry_after=1.0)
    state = budget_states(redis_client)["default"]
    assert state.reason == "throttled" and state.rate < 400.0 and state.version >= 1
    slot = theirs.reserve(max_wait=5)
    assert slot.granted and slot.wait == pytest.approx(1.0, abs=0.2) and slot.rate == state.rate


def test_workers_follow_kubesims_429s_and_create_every_job_once(redis_client, redis_url, kubesim, podq_worker):
    """Real 429s with Retry-After (kubesim's fault rule on a third of the first creates): every job is
    created exactly once, and the budget records the push-back."""
    admin = kubesim.admin()
    settings = make_settings(redis_url, kubesim.kubeconfig, create_rate=1000.0, create_rate_start=200.0)
    rule = admin.add_fault(action="429", verb="create", rate=0.3, count=8, retry_after=1)
    jobs = [make_job(n) for n in range(40)]
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, jobs)
        wait_for(lambda: all(ledger_state(redis_client, job) == "created" for job in jobs), timeout=60,
                 message="every job created")
    assert next(item for item in admin.faults() if item["id"] == rule)["fired"] >= 1
    created = [entry["name"] for entry in admin.creates(namespace=NAMESPACE)]
    assert sorted(created) == sorted(pod_name(job) for job in jobs)
    state = budget_states(redis_client)["default"]
    assert state.cut_at > 0 and state.peak > 0, f"the 429s cut the budget: {state}"


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


def test_waits_for_create_capacity_never_fail_a_job(podq_worker, redis_client, redis_url, kubesim):
    """A budget far below the demand sends jobs back through the delayed set again and again; those
    waits are not errors, so none of them counts toward ``max_delays`` (1 here): every job is created
    and none fails (before, such jobs failed ``RateLimited`` after max_delays waits)."""
    settings = make_settings(redis_url, kubesim.kubeconfig, create_rate=4.0, create_rate_start=4.0, create_burst=1,
                             max_delays=1)
    jobs = [make_job(n) for n in range(24)]
    waited_before = REGISTRY.get_sample_value("podq_jobs_delayed_total", {"cause": "rate_limit"}) or 0.0
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, jobs)
        wait_for(lambda: all(ledger_state(redis_client, job) in ("created", "terminal") for job in jobs),
                 timeout=90, message="every job created")
    waited = (REGISTRY.get_sample_value("podq_jobs_delayed_total", {"cause": "rate_limit"}) or 0.0) - waited_before
    assert waited > len(jobs), f"the budget sent jobs back more often than there are jobs ({waited})"
    created = [entry["name"] for entry in kubesim.admin().creates(namespace=NAMESPACE)]
    assert sorted(created) == sorted(pod_name(job) for job in jobs)
    failed = [job.job_id for job in jobs if any(r.state.value == "failed" for r in results_for(redis_client, job))]
    assert failed == []
