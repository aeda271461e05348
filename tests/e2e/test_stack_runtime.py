"""`podq up --run-containers`: the embedded stack's kubesim runs each job's command on this host."""
from __future__ import annotations

import argparse

import pytest

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.cli import build_parser
from podq.commands.up import kubesim_args
from podq.shared.errors import PodqError
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import load_settings
from podq.shared.states import State
from podq.stack import Stack, StackOptions
from tests.support import wait_for


def up_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["up", *argv])


def test_up_passes_the_runtime_options_to_kubesim_only_when_asked():
    args = up_args("--run-containers", "--image-map", "apache/airflow*=/venv/bin", "--container-env", "A=1")
    assert kubesim_args(args) == ("--run-containers", "--image-map=apache/airflow*=/venv/bin", "--container-env=A=1")
    assert kubesim_args(up_args()) == ()
    with pytest.raises(PodqError, match="need --run-containers"):
        kubesim_args(up_args("--image-map", "x=y"))


def test_jobs_really_run_and_their_exit_decides_the_result(tmp_path):
    marker = tmp_path / "ran"
    options = StackOptions(workers=1, worker_concurrency=4, data_dir=str(tmp_path / "stack"),
                           kubesim_args=("--run-containers",))
    with Stack(load_settings({}), options) as stack:
        client = connect(stack.redis_url, block_ms=200)
        key = lambda task: TaskKey(dag_id="runtime", task_id=task, run_id="r1")  # noqa: E731
        ok = KubernetesJob.new(scheduler_id="rt", key=key("ok"), command=["sh", "-c", f"echo yes > {marker}"])
        bad = KubernetesJob.new(scheduler_id="rt", key=key("bad"), command=["sh", "-c", "exit 7"])
        consumer = ResultsConsumer(client, scheduler_id="rt", consumer="c", block_ms=200)
        submit_many(client, [ok, bad])
        final = {}

        def both_terminal():
            batch = consumer.read()
            final.update({result.job_id: result for result in batch if result.terminal})
            consumer.ack(batch)
            return len(final) == 2
        wait_for(both_terminal, timeout=90, interval=0, message="both jobs terminal")
        client.close()
    assert final[ok.job_id].state is State.SUCCEEDED
    assert marker.read_text() == "yes\n", "the command ran on this host"
    assert final[bad.job_id].state is State.FAILED
    assert final[bad.job_id].failure_details.exit_code == 7
