"""submit → intake → Celery worker → pod in kubesim → watcher → results stream, all real processes."""
from __future__ import annotations

import itertools
import time

from kubernetes import client as k8s, config as k8s_config

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit, submit_many
from podq.broker.queue.envelopes import dispatch_jobs
from podq.broker.store import keys
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.states import State
from tests.support import wait_for

SIM = "kubesim.podq.io/"
_scheduler_ids = itertools.count()


def new_scheduler() -> str:
    return f"e2e-{next(_scheduler_ids)}-{time.time_ns()}"


def job(scheduler_id: str, n: int, *, run_seconds: float = 0.05, exit_code: int = 0) -> KubernetesJob:
    annotations = {f"{SIM}run-seconds": str(run_seconds)}
    if exit_code:
        annotations[f"{SIM}exit-code"] = str(exit_code)
    key = TaskKey(dag_id="e2e", task_id=f"t{n}", run_id="run", try_number=1)
    return KubernetesJob.new(scheduler_id=scheduler_id, key=key, command=["true"],
                             pod_override={"metadata": {"annotations": annotations}})


def collect(consumer: ResultsConsumer, into: dict, *, until) -> None:
    """Read (and ack) results into ``into[job_id]`` until ``until(into)`` holds."""
    def step():
        batch = consumer.read(block_ms=200)
        for result in batch:
            into.setdefault(result.job_id, []).append(result)
        consumer.ack(batch)
        return until(into)
    wait_for(step, timeout=90, interval=0, message="results")


def terminal_count(results: dict) -> int:
    return sum(1 for items in results.values() if any(r.terminal for r in items))


def test_every_job_reports_pending_running_then_one_terminal(stack, stack_redis):
    scheduler = new_scheduler()
    jobs = [job(scheduler, n, run_seconds=1.2, exit_code=1 if n % 3 == 2 else 0) for n in range(6)]
    consumer = ResultsConsumer(stack_redis, scheduler_id=scheduler, consumer="e2e")
    submit_many(stack_redis, jobs)
    results: dict = {}
    collect(consumer, results, until=lambda r: terminal_count(r) == len(jobs))
    for n, item in enumerate(jobs):
        states = [r.state for r in results[item.job_id]]
        expected_end = State.FAILED if n % 3 == 2 else State.SUCCEEDED
        assert states == [State.PENDING, State.RUNNING, expected_end], (item.key, states)
        assert results[item.job_id][-1].pod_name == pod_name_for(item.job_id, item.key)
    failed = results[jobs[2].job_id][-1]
    assert failed.failure_details.exit_code == 1 and failed.failure_details.container_name == "base"


def test_resubmits_and_redeliveries_make_no_second_pod(stack, stack_redis, stack_admin):
    scheduler = new_scheduler()
    item = job(scheduler, 0, run_seconds=2.0)
    name = pod_name_for(item.job_id, item.key)
    consumer = ResultsConsumer(stack_redis, scheduler_id=scheduler, consumer="e2e")
    results: dict = {}
    submit(stack_redis, item)
    collect(consumer, results, until=lambda r: any(x.state is State.RUNNING for x in r.get(item.job_id, [])))
    # While the pod runs: the producer resubmits and the Celery task is delivered again.
    submit(stack_redis, item)
    dispatch_jobs(stack_redis, [item.encode()], per_message=1)
    collect(consumer, results, until=lambda r: terminal_count(r) == 1)
    # After it finished and was deleted (podq's completion policy deletes succeeded pods;
    # delete it here if the policy has not yet): the same again.
    k8s_config.load_kube_config(config_file=stack.kubeconfig)
    api = k8s.CoreV1Api()
    try:
        api.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    except k8s.exceptions.ApiException as exc:
        assert exc.status == 404
    wait_for(lambda: not api.list_namespaced_pod("default", field_selector=f"metadata.name={name}").items,
             message="the pod to be deleted")
    submit(stack_redis, item)
    dispatch_jobs(stack_redis, [item.encode()], per_message=1)
    # A later job through the same path shows the duplicates have been handled and dropped.
    sentinel = job(scheduler, 1)
    submit(stack_redis, sentinel)
    collect(consumer, results, until=lambda r: terminal_count(r) == 2)
    wait_for(lambda: stack_redis.llen(keys.CELERY_QUEUE) == 0 and stack_redis.zcard("unacked_index") == 0,
             message="the Celery queue to drain")
    assert stack_admin.create_count(name_prefix=name) == 1
    states = [r.state for r in results[item.job_id]]
    assert states.count(State.SUCCEEDED) == 1 and sum(1 for s in states if s.terminal) == 1


def test_malformed_record_goes_dead_and_later_jobs_run(stack, stack_redis):
    scheduler = new_scheduler()
    dead_before = stack_redis.xlen(keys.DEAD_STREAM)
    stack_redis.xadd(keys.JOBS_STREAM, {"record": b"\x93\x01\x02\x03"})
    later = job(scheduler, 0)
    submit(stack_redis, later)
    consumer = ResultsConsumer(stack_redis, scheduler_id=scheduler, consumer="e2e")
    results: dict = {}
    collect(consumer, results, until=lambda r: terminal_count(r) == 1)
    assert results[later.job_id][-1].state is State.SUCCEEDED
    dead = stack_redis.xrange(keys.DEAD_STREAM)[dead_before:]
    assert len(dead) == 1 and b"expected a map, got array" in dead[0][1][b"reason"]
