"""Chaos: the watcher process SIGKILLed and restarted while pods change state; a standby taking over.

Real processes (`python -m podq watcher`), kubesim over HTTP, the session Valkey.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from podq.shared import naming
from podq.shared.states import State
from tests.support import watcher as h
from tests.support import wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(redis_client, redis_url, kubesim, tmp_path):
    with h.environment(redis_client, redis_url, kubesim, tmp_path) as environment:
        yield environment


class Processes:
    def __init__(self, env: h.Env, **variables: str) -> None:
        self.env = env
        self.variables = variables
        self.started: list[subprocess.Popen] = []

    def start(self, name: str) -> subprocess.Popen:
        environ = dict(os.environ, PODQ_REDIS_URL=self.env.settings.redis.url,
                       PODQ_KUBE_KUBECONFIG=self.env.sim.kubeconfig, **self.variables)
        log = open(self.env.tmp / f"{name}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "podq", "watcher", "--namespace", "default",
                                    "--instance", name, "--health-file", str(self.env.tmp / f"{name}.health")],
                                   cwd=REPO, env=environ, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def logs(env: h.Env) -> str:
    return "\n".join(path.read_text(errors="replace")[-3000:] for path in env.tmp.glob("*.log"))


def running(env: h.Env, items) -> bool:
    per_job = h.results(env.client)
    return all(State.RUNNING in [r.state for r in per_job.get(item.job_id, [])] for item in items)


def test_sigkill_and_restart_while_200_pods_change_state(env):
    procs = Processes(env, PODQ_WATCHER_LEASE_TTL="1.5", PODQ_WATCHER_LEASE_POLL="0.2")
    jobs = [h.job(i) for i in range(200)]
    deleted_replayed, deleted_relisted = jobs[:10], jobs[10:20]
    rest = jobs[20:]
    outcome = {item.job_id: ({"run-seconds": f"{0.3 + (i % 9) * 0.4:.1f}", "outcome": "Failed"} if i % 6 == 0
                             else {"run-seconds": f"{0.3 + (i % 9) * 0.4:.1f}"}) for i, item in enumerate(rest)}
    admin = env.sim.admin()
    try:
        first = procs.start("w1")
        h.launch(env.client, env.api, [(item, {"run-seconds": "60"}) for item in jobs[:20]])
        wait_for(lambda: running(env, jobs[:20]), timeout=20, message="the long pods running")
        h.launch(env.client, env.api, [(item, outcome[item.job_id]) for item in rest[:90]])
        time.sleep(0.7)  # let some of them move on: the kill lands mid-flight by design
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # Down: pods keep changing, new ones come, some running pods are deleted (history kept).
        h.launch(env.client, env.api, [(item, outcome[item.job_id]) for item in rest[90:]])
        for item in deleted_replayed:
            env.api.delete_namespaced_pod(naming.pod_name_for(item.job_id, item.key), "default",
                                          grace_period_seconds=0, _preload_content=False)
        second = procs.start("w2")
        wait_for(lambda: h.terminal_of(h.results(env.client), deleted_replayed[-1].job_id), timeout=20,
                 message="the second watcher catching up")
        second.send_signal(signal.SIGKILL)
        second.wait(10)
        # Down again: more deletions, then the history is compacted, so the restart must relist.
        for item in deleted_relisted:
            env.api.delete_namespaced_pod(naming.pod_name_for(item.job_id, item.key), "default",
                                          grace_period_seconds=0, _preload_content=False)
        admin.compact()
        procs.start("w3")
        per_job = env.wait_terminal(jobs, timeout=60)
    finally:
        procs.close()
    expected = {item.job_id: State.FAILED for item in deleted_replayed}  # a Running pod deleted: failed
    expected.update({item.job_id: State.LOST for item in deleted_relisted})  # gone while nobody watched
    expected.update({item.job_id: State.FAILED if outcome[item.job_id].get("outcome") else State.SUCCEEDED
                     for item in rest})
    try:
        h.assert_clean(per_job, expected)
    except AssertionError:
        print(logs(env))
        raise


def test_standby_process_takes_over_within_fifteen_seconds(env):
    """Default lease settings (10 s TTL, 1 s poll): the standby publishes within 15 s of the leader's death."""
    procs = Processes(env)
    before, after = [h.job(i) for i in range(5)], [h.job(i) for i in range(5, 10)]
    try:
        one, two = procs.start("one"), procs.start("two")
        h.launch(env.client, env.api, [(item, None) for item in before])
        env.wait_terminal(before, timeout=20)
        holder = env.client.get("podq:watcher:default:lease").decode()
        leader = one if holder.endswith(":one") else two
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        died = time.monotonic()
        h.launch(env.client, env.api, [(item, None) for item in after])
        per_job = env.wait_terminal(after, timeout=20)
        took = time.monotonic() - died
    finally:
        procs.close()
    assert took <= 15.0, took
    h.assert_clean(per_job, {item.job_id: State.SUCCEEDED for item in before + after})
