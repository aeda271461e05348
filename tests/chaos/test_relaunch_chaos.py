"""Launch failures across SIGKILLs: pods evicted before they started are launched again once, never twice,
whichever podq service is killed right after the evictions (issue 20).

The embedded stack runs with the kubelet paused; each job's first pod is evicted before it starts (a
status written through kubesim's admin API), one service is SIGKILLed at once and started again, then the
kubelet runs. The audit: every job succeeded on its second launch, kubesim's create log has exactly one
create of each job's first and second launch and none of a third, and each job got one ``Relaunched``.
"""
from __future__ import annotations

import pytest

from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.broker.store.ledger import Ledger
from podq.kubesim.admin import Admin
from podq.shared import naming
from podq.shared.states import LedgerState, State
from tests.support import wait_for
from tests.support.pods import EVICTED_BEFORE_START
from tests.support.system import (SERVICE_ARGV, chaos_stack, check_alive, kill, make_jobs, new_scheduler,
                                  stream_results, worker_argv)

JOBS = 12
ARGV = {"watcher": SERVICE_ARGV["watcher"], "intake": SERVICE_ARGV["intake"], "worker-1": worker_argv(1)}


@pytest.mark.parametrize("victim", ["watcher", "worker-1", "intake"])
def test_a_relaunch_happens_once_across_a_sigkill(tmp_path, victim):
    with chaos_stack(tmp_path) as stack:
        admin = Admin(stack.kubesim_url)
        wait_for(lambda: admin.stats()["watches"] >= 1, timeout=60, message="the watcher watching")
        client = connect(stack.redis_url, block_ms=200)
        scheduler_id = new_scheduler(f"relaunch-{victim}")
        jobs, _ = make_jobs(scheduler_id, JOBS, run_seconds=0.2, fail_every=0)
        ledger = Ledger(client)
        admin.pause_kubelet()
        submit_many(client, jobs)
        wait_for(lambda: all((e := ledger.get(job.job_id)) is not None and e.state is LedgerState.CREATED
                             for job in jobs), timeout=60, message="every first pod created")
        for job in jobs:
            admin.set_pod_status("default", naming.pod_name_for(job.job_id, job.key), status=EVICTED_BEFORE_START)
        kill(stack, victim)
        stack.spawn(victim, ARGV[victim])
        admin.resume_kubelet()

        def ends():
            ended = {r.job_id: r.state for r in stream_results(client, scheduler_id) if r.state.terminal}
            return ended if len(ended) == len(jobs) else None
        ended = wait_for(ends, timeout=120, message="every job's terminal result")
        results = stream_results(client, scheduler_id)
        creates = {job.job_id: [admin.create_count(namespace="default", name_prefix=naming.pod_name_for(
            job.job_id, job.key, launch=n)) for n in (1, 2, 3)] for job in jobs}
        check_alive(stack)
        client.close()
    assert set(ended.values()) == {State.SUCCEEDED}, ended
    for job in jobs:
        assert creates[job.job_id] == [1, 1, 0], (job.job_id, creates[job.job_id])
        again = [r for r in results if r.job_id == job.job_id and r.pending_reason is not None
                 and r.pending_reason.reason == "Relaunched"]
        assert len(again) == 1, (job.job_id, again)
        assert [r.state for r in results if r.job_id == job.job_id and r.state.terminal] == [State.SUCCEEDED]
