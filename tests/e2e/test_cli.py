"""The `podq` command as a user runs it against a running stack: submit, results, job status."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from podq import KubernetesJob, ResultsConsumer, TaskKey, submit_many
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
        out = podq(stack, "results", "--scheduler-id", scheduler)   # a peek: each reads the stream from its start
        if out.returncode == 1 and "no scheduler" in out.stderr:
            return False   # intake has not admitted the job yet
        assert out.returncode == 0, out.stderr
        seen[:] = [line for line in out.stdout.splitlines() if line.strip()]
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


# -- the CLI tells the truth fast (issue 23) --------------------------------------------------------------

def podq_env(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    full = {**{key: value for key, value in os.environ.items() if not key.startswith("PODQ_")}, **env}
    return subprocess.run([sys.executable, "-m", "podq", *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (a hung server, a black hole)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("command", [["submit", "--scheduler-id", "s", "--dag-id", "d", "--task-id", "t",
                                      "--run-id", "r"],
                                     ["status", "--once"], ["results", "--scheduler-id", "s"],
                                     ["job", "status", "x"]])
def test_unreachable_redis_is_one_line_naming_the_url_without_its_password(closed_port, command):
    url = f"redis://podq:s3cret@127.0.0.1:{closed_port}/0"
    out = podq_env({"PODQ_REDIS_URL": url}, *command, timeout=30)
    assert out.returncode == 69, out.stderr
    line = one_line(out.stderr)
    assert line.startswith(f"podq {command[0]}: cannot reach Redis at redis://podq:***@127.0.0.1:{closed_port}/0")
    assert "Connection refused" in line and "check PODQ_REDIS_URL" in line
    assert "s3cret" not in out.stdout + out.stderr


def test_a_server_that_never_answers_is_given_up_on_after_the_deadline(silent_server):
    out = podq_env({"PODQ_REDIS_URL": f"redis://127.0.0.1:{silent_server}/0"}, "status", "--once", timeout=30)
    assert out.returncode == 69, out.stderr
    assert "no answer within 5 s" in one_line(out.stderr)


def test_wrong_credentials_are_refused_at_once_naming_the_user(stack):
    url = stack.redis_url.replace("redis://", "redis://alice:wrong@")
    out = podq_env({"PODQ_REDIS_URL": url}, "results", "--scheduler-id", "s", timeout=30)
    assert out.returncode == 77, out.stderr
    line = one_line(out.stderr)
    assert "refused user 'alice'" in line and "wrong" not in line


def test_up_refuses_an_unreachable_redis_url(closed_port, tmp_path):
    out = podq_env({"PODQ_REDIS_URL": f"redis://127.0.0.1:{closed_port}/0"}, "up", "--data-dir", str(tmp_path),
                   timeout=60)
    assert out.returncode == 69, out.stdout + out.stderr
    assert "podq is up" not in out.stdout
    assert "cannot reach Redis" in one_line(out.stderr)


def test_up_says_commands_are_simulated_and_ctrl_c_exits_130(tmp_path):
    env = {**{key: value for key, value in os.environ.items() if not key.startswith("PODQ_")}}
    process = subprocess.Popen([sys.executable, "-m", "podq", "up", "--data-dir", str(tmp_path)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("Ctrl-C stops every service"):
                break
        text = "".join(banner)
        assert "podq is up" in text
        assert "SIMULATED: kubesim runs no command" in text and "podq up --run-containers" in text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_results_follow_stopped_by_sigterm_exits_143(stack):
    submitted = podq(stack, "submit", "--scheduler-id", "follow", "--dag-id", "d", "--task-id", "t", "--run-id", "r")
    assert submitted.returncode == 0, submitted.stderr
    process = subprocess.Popen([sys.executable, "-m", "podq", "results", "--scheduler-id", "follow", "--follow"],
                               env={**os.environ, "PODQ_REDIS_URL": stack.redis_url}, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline()   # it is reading
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 143
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_results_peek_leaves_the_schedulers_group_untouched(stack, stack_redis):
    scheduler = f"peek-{time.time_ns()}"
    jobs = [KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="d", task_id=f"t{n}", run_id="r"))
            for n in range(3)]
    submit_many(stack_redis, jobs)
    peeked: list[str] = []

    def all_terminal():
        out = podq(stack, "results", "--scheduler-id", scheduler)
        peeked[:] = [line for line in out.stdout.splitlines() if " succeeded " in line]
        return len(peeked) == 3
    wait_for(all_terminal, timeout=90, interval=0.2, message="3 succeeded results, peeked")
    # The scheduler's own consumer still gets every result: the peeks took none and left no consumer.
    group = [g for g in stack_redis.xinfo_groups(f"podq:results:{scheduler}") if g["name"] == b"scheduler"][0]
    assert group["consumers"] == 0 and group["pending"] == 0
    consumer = ResultsConsumer(stack_redis, scheduler_id=scheduler, consumer="the-scheduler", block_ms=200)
    read = consumer.read(count=100)
    assert sorted(result.job_id for result in read if result.terminal) == sorted(job.job_id for job in jobs)


def test_results_consume_warns_when_the_group_has_another_consumer(stack, stack_redis):
    scheduler = f"consume-{time.time_ns()}"
    submit_many(stack_redis, [KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="d", task_id="t",
                                                                                  run_id="r"))])
    ResultsConsumer(stack_redis, scheduler_id=scheduler, consumer="airflow-executor", block_ms=200).read()
    out = podq(stack, "results", "--scheduler-id", scheduler, "--consume", "--consumer", "operator")
    assert out.returncode == 0, out.stderr
    assert "warning: consuming in group 'scheduler'" in out.stderr and "airflow-executor" in out.stderr


def test_resubmission_prints_the_existing_jobs_state(stack):
    args = ["submit", "--scheduler-id", f"again-{time.time_ns()}", "--dag-id", "d", "--task-id", "t",
            "--run-id", "r"]
    first = podq(stack, *args)
    assert first.returncode == 0, first.stderr
    assert "accepted by intake" in first.stdout
    second = podq(stack, *args)
    assert second.returncode == 0, second.stderr
    job_id = first.stdout.split()[0]
    assert second.stdout.startswith(f"{job_id} exists already")
    assert "not submitted again" in second.stdout and "--try-number 2" in second.stdout


def test_an_unknown_scheduler_is_said_so_and_leaves_no_trace(stack, stack_redis):
    out = podq(stack, "results", "--scheduler-id", "no-such-scheduler-typo")
    assert out.returncode == 1
    assert "no scheduler 'no-such-scheduler-typo'" in one_line(out.stderr)
    assert not stack_redis.exists("podq:results:no-such-scheduler-typo")
    assert b"no-such-scheduler-typo" not in stack_redis.smembers("podq:schedulers")


def test_submit_reports_intakes_verdict_not_the_shells_settings(stack):
    # The shell believes "elsewhere" is allowed; intake (the stack's settings) does not.
    env = {"PODQ_REDIS_URL": stack.redis_url, "PODQ_INTAKE_NAMESPACES": "elsewhere"}
    out = podq_env(env, "submit", "--scheduler-id", f"ns-{time.time_ns()}", "--dag-id", "d", "--task-id", "t",
                   "--run-id", "r", "--namespace", "elsewhere")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "intake refused job" in out.stderr
    assert "job.namespace: 'elsewhere' is not in the allowed namespaces (default)" in out.stderr
