"""The `podq` command as a user runs it against a running stack: submit, results, job status."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.support import wait_for


def podq(stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PODQ_REDIS_URL": stack.redis_url}
    return subprocess.run([sys.executable, "-m", "podq", *args], env=env, capture_output=True, text=True, timeout=60)


def test_submit_then_read_results_then_status(stack):
    scheduler = f"cli-{time.time_ns()}"
    # The pod runs 1.2 s, so the watcher sees it pending and running (a shorter one may be first
    # seen already finished, and then only its terminal result is published).
    runs = '{"metadata": {"annotations": {"kubesim.podq.io/run-seconds": "1.2"}}}'
    submitted = podq(stack, "submit", "--scheduler-id", scheduler, "--dag-id", "etl", "--task-id", "load",
                     "--run-id", "r1", "--pod-override", runs, "--", "echo", "hello")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]
    seen: list[str] = []

    def terminal_read():
        out = podq(stack, "results", "--scheduler-id", scheduler, "--consumer", "cli")
        assert out.returncode == 0, out.stderr
        seen.extend(line for line in out.stdout.splitlines() if line.strip())
        return any(" succeeded " in line for line in seen)
    wait_for(terminal_read, timeout=60, interval=0.2, message="the succeeded result")
    assert all(job_id in line for line in seen)
    assert [line.split()[2] for line in seen] == ["pending", "running", "succeeded"]
    status = podq(stack, "job", "status", job_id)
    assert status.returncode == 0, status.stderr
    assert "terminal" in status.stdout and "succeeded" in status.stdout


def test_refused_submission_says_why_and_submits_nothing(stack):
    out = podq(stack, "submit", "--scheduler-id", "cli", "--dag-id", "d", "--task-id", "t", "--run-id", "r",
               "--namespace", "not-allowed")
    assert out.returncode == 2
    assert "job.namespace: 'not-allowed' is not in the allowed namespaces" in out.stderr


def test_commands_without_a_redis_url_say_how_to_get_one():
    env = {key: value for key, value in os.environ.items() if key != "PODQ_REDIS_URL"}
    out = subprocess.run([sys.executable, "-m", "podq", "results", "--scheduler-id", "x"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "PODQ_REDIS_URL is not set" in out.stderr
