"""The embedded stack's supervisor restarts a service that dies, and the jobs still run."""
from __future__ import annotations

import os
import signal

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import load_settings
from podq.stack import Stack, StackOptions
from tests.support import wait_for


def test_a_killed_worker_and_intake_come_back_and_jobs_finish(tmp_path):
    options = StackOptions(workers=1, worker_concurrency=4, data_dir=str(tmp_path), restart=True)
    with Stack(load_settings({}), options) as stack:
        client = connect(stack.redis_url, block_ms=200)
        before = {name: stack.processes[name].pid for name in ("worker-1", "intake")}
        for name in before:
            os.kill(before[name], signal.SIGKILL)
        wait_for(lambda: all(stack.processes[name].pid != pid and stack.processes[name].poll() is None
                             for name, pid in before.items()), timeout=20, message="both services restarted")
        assert stack.dead() == []
        assert {name: len(stack.restarts[name]) for name in before} == {"worker-1": 1, "intake": 1}
        jobs = [KubernetesJob.new(scheduler_id="restarts", key=TaskKey(dag_id="d", task_id=f"t{n}", run_id="r"),
                                  command=["true"]) for n in range(5)]
        consumer = ResultsConsumer(client, scheduler_id="restarts", consumer="c", block_ms=200)
        submit_many(client, jobs)
        done: set[str] = set()

        def all_terminal():
            batch = consumer.read()
            done.update(result.job_id for result in batch if result.terminal)
            consumer.ack(batch)
            return done == {job.job_id for job in jobs}
        wait_for(all_terminal, timeout=60, interval=0, message="every job terminal after the restarts")
        client.close()


def test_podq_up_watches_the_namespaces_its_settings_name(tmp_path):
    # Intake admits "podq" and "default"; the watcher must watch every namespace, as the settings say.
    env = {"PODQ_INTAKE_NAMESPACES": "podq,default", "PODQ_WATCHER_NAMESPACES": "*"}
    options = StackOptions(workers=1, worker_concurrency=4, data_dir=str(tmp_path), extra_env=env)
    with Stack(load_settings({}), options) as stack:
        client = connect(stack.redis_url, block_ms=200)
        jobs = [KubernetesJob.new(scheduler_id="scopes", key=TaskKey(dag_id="d", task_id=f"t-{namespace}", run_id="r"),
                                  command=["true"], namespace=namespace) for namespace in ("podq", "default")]
        consumer = ResultsConsumer(client, scheduler_id="scopes", consumer="c", block_ms=200)
        submit_many(client, jobs)
        ended: dict[str, str] = {}

        def all_terminal():
            batch = consumer.read()
            ended.update((result.job_id, result.state.value) for result in batch if result.terminal)
            consumer.ack(batch)
            return len(ended) == len(jobs)
        wait_for(all_terminal, timeout=60, interval=0, message="both jobs terminal")
        client.close()
    assert ended == {job.job_id: "succeeded" for job in jobs}
