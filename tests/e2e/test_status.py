"""`podq status` as a user runs it: in a real pseudo-terminal (live and --once) and as --json."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import msgpack
import pexpect

from podq.broker.client.submit import submit_many
from podq.broker.store import keys
from podq.shared.records import KubernetesJob, TaskKey
from tests.support import wait_for

SCHEDULER = "status-view"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
JOBS = 6


def _env(stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODQ_")}
    env.update({"PODQ_REDIS_URL": stack.redis_url, "COLUMNS": "160", "LINES": "60", "TERM": "xterm"})
    return env


def _run_jobs(stack, client) -> None:
    jobs = [KubernetesJob.new(scheduler_id=SCHEDULER, key=TaskKey(dag_id="s", task_id=f"t{n}", run_id="r"),
                              command=["true"]) for n in range(JOBS)]
    submit_many(client, jobs)
    client.xadd(keys.JOBS_STREAM, {"record": msgpack.packb({"scheduler_id": SCHEDULER})})

    def finished():
        stream = keys.results_stream(SCHEDULER)
        return sum(1 for _, fields in client.xrange(stream) if b"succeeded" in fields[b"record"]) == JOBS
    wait_for(finished, timeout=90, interval=0.2, message="every job succeeded")


def test_status_json_reports_what_redis_holds(stack, stack_redis):
    _run_jobs(stack, stack_redis)
    done = subprocess.run([sys.executable, "-m", "podq", "status", "--json", "--interval", "0.5"], env=_env(stack),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    (scheduler,) = [item for item in status["schedulers"] if item["scheduler"] == SCHEDULER]
    assert scheduler["length"] == stack_redis.xlen(keys.results_stream(SCHEDULER))
    assert scheduler["lag"] == scheduler["length"] and scheduler["pending"] == 0 and scheduler["dead"] == 0
    (scope,) = status["watchers"]
    assert scope["scope"] == "default" and scope["leader"] and scope["lease_ttl"] > 0
    assert sorted(status["workers"]) == ["worker-1@podq", "worker-2@podq"]
    assert status["totals"]["dispatched"] >= JOBS and status["totals"]["created"] >= JOBS
    assert status["totals"]["accepted"] >= JOBS and status["totals"]["ended"]["succeeded"] >= JOBS
    # Every process by its own liveness record: one intake, two workers, one watcher.
    assert {role: len(instances) for role, instances in status["live"].items()} == {
        "intake": 1, "worker": 2, "watcher": 1}
    assert status["queue"] == {"celery_messages": 0, "in_flight": 0, "delayed": 0}
    assert status["dead_letters"]["count"] >= 1
    assert "job.schema" in status["dead_letters"]["recent"][0]["reason"]
    assert set(status["rates"]) == {"dispatched", "created"}
    # The workers reported their creates to the cluster's budget: a rate below the ceiling and its reason.
    budget = status["budgets"]["default"]
    assert 0 < budget["rate"] <= 1000 and budget["reason"] and budget["pause_left"] == 0


def test_status_once_in_a_terminal(stack, stack_redis):
    if not stack_redis.exists(keys.results_stream(SCHEDULER)):
        _run_jobs(stack, stack_redis)
    child = pexpect.spawn(sys.executable, ["-m", "podq", "status", "--once", "--interval", "0.3"], env=_env(stack),
                          dimensions=(60, 160), encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    screen = ANSI.sub("", child.before)
    assert "\x1b[" in child.before, "on a terminal the view is styled"
    for expected in ("podq status", "/s dispatched", "schedulers", SCHEDULER, "watchers", "default",
                     "workers 2 answered the ping: worker-1@podq, worker-2@podq",
                     "intake: 1  worker: 2  watcher: 1", "pods created", "dead letters", "job.schema",
                     "create budgets", "creates/s"):
        assert expected in screen, (expected, screen)


def test_status_live_view_refreshes_until_ctrl_c(stack, stack_redis):
    child = pexpect.spawn(sys.executable, ["-m", "podq", "status", "--interval", "0.3"], env=_env(stack),
                          dimensions=(60, 160), encoding="utf-8", timeout=60)
    child.expect("podq status")
    child.expect("rates: measuring")       # the first screen: one reading, no rate yet
    child.expect(r"/s dispatched")          # a later screen: the live view refreshed with rates
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130   # Ctrl-C: 128 + SIGINT, by convention (docs/operations.md)


def test_a_jobs_trace_context_reaches_its_pod_and_every_result(stack, stack_redis):
    from podq.broker.client.results import ResultsConsumer
    from podq.shared import naming, tracing
    from tests.support import core_v1

    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    traced = KubernetesJob.new(scheduler_id="traced", key=TaskKey(dag_id="tr", task_id="given", run_id="r"),
                               command=["false"], traceparent=parent,
                               pod_override={"metadata": {"annotations": {"kubesim.podq.io/exit-code": "2"}}})
    untraced = KubernetesJob.new(scheduler_id="traced", key=TaskKey(dag_id="tr", task_id="started", run_id="r"),
                                 command=["true"])
    consumer = ResultsConsumer(stack_redis, scheduler_id="traced", consumer="c", block_ms=200)
    submit_many(stack_redis, [traced, untraced])
    seen: dict[str, list] = {traced.job_id: [], untraced.job_id: []}

    def both_terminal():
        batch = consumer.read()
        for result in batch:
            seen[result.job_id].append(result)
        consumer.ack(batch)
        return all(any(result.terminal for result in results) for results in seen.values())
    wait_for(both_terminal, timeout=90, interval=0, message="both jobs terminal")
    # The given trace context is kept: on every result, and on the pod (a failed job's pod is kept).
    assert [result.traceparent for result in seen[traced.job_id]] == [parent] * len(seen[traced.job_id])
    with core_v1(stack.kubeconfig) as api:
        pod = api.read_namespaced_pod(naming.pod_name_for(traced.job_id, traced.key), "default")
    assert pod.metadata.annotations[naming.TRACEPARENT] == parent
    # A job submitted without one gets one from intake, the same on each of its results.
    started = {result.traceparent for result in seen[untraced.job_id]}
    assert len(started) == 1 and tracing.check(started.pop()) is None
