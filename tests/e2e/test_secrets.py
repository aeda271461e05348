"""Secrets never appear in logs, `podq settings`, health output, error messages or results.

A whole stack runs with secrets it must keep: a Redis password (in PODQ_REDIS_URL), a
Sentinel password setting, and a kubesim bearer token (in the kubeconfig). It runs jobs
(one of which fails), `podq settings`, every health check and a service started with a
wrong password; then every log, every printed line and every result is searched for
each secret.
"""
from __future__ import annotations

import subprocess
import sys

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.embedded import EmbeddedRedis
from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.kubesim.server import start_in_thread
from podq.shared.settings import load_settings
from podq.stack import Stack, StackOptions
from tests.support.system import Collector, make_jobs, new_scheduler

REDIS_PASSWORD = "redis-pw-Zq81vXk"
SENTINEL_PASSWORD = "sentinel-pw-Hh27aa"
KUBE_TOKEN = "kube-token-Tt5531cc"
SECRETS = (REDIS_PASSWORD, SENTINEL_PASSWORD, KUBE_TOKEN)


def podq(*argv: str, env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run([sys.executable, "-m", "podq", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)
    return done.stdout + done.stderr


def test_no_secret_in_any_log_output_or_result(tmp_path):
    with EmbeddedRedis(data_dir=str(tmp_path / "redis")) as server:
        admin_client = connect(server.url)
        admin_client.config_set("requirepass", REDIS_PASSWORD)
        admin_client.close()
        url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{server.port}/0"
        sim = start_in_thread(kubeconfig=str(tmp_path / "kubeconfig"), token=KUBE_TOKEN, default_run_seconds=0.2)
        try:
            env = {"PODQ_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD, "PODQ_WORKER_VISIBILITY_TIMEOUT": "10"}
            settings = load_settings({"PODQ_REDIS_URL": url, "PODQ_KUBE_KUBECONFIG": sim.kubeconfig, **env})
            options = StackOptions(workers=1, worker_concurrency=2, data_dir=str(tmp_path / "stack"), extra_env=env)
            printed = []
            with Stack(settings, options) as stack:
                client = connect(url, block_ms=200)
                scheduler_id = new_scheduler("secrets")
                jobs, expected = make_jobs(scheduler_id, 10, run_seconds=0.1)
                submit_many(client, jobs)
                collector = Collector(ResultsConsumer(client, scheduler_id=scheduler_id, consumer="scheduler-1"))
                collector.until_all_terminal(set(expected), timeout=90, stack=stack)
                ended = {job_id: items for job_id, items in collector.by_job.items()}
                service_env = {**stack.env(), "PODQ_KUBE_KUBECONFIG": sim.kubeconfig}
                printed.append(podq("settings", env=service_env))
                for service in ("intake", "worker", "watcher"):
                    printed.append(podq(service, "--check", env=service_env))
                wrong = {**service_env, "PODQ_REDIS_URL": f"redis://:not-{REDIS_PASSWORD}@127.0.0.1:{server.port}/0"}
                printed.append(podq("worker", "--check", env=wrong))
                printed.append(podq("job", "status", jobs[0].job_id, env=service_env))
                results = [entry for _id, entry in client.xrange(keys.results_stream(scheduler_id))]
                dead = client.xrange(keys.DEAD_STREAM)
                client.close()
                logs = {path.name: path.read_text(errors="replace") for path in stack.log_dir.iterdir()
                        if path.is_file()}
        finally:
            sim.stop()
    assert "PODQ_REDIS_URL" in printed[0] and "PODQ_REDIS_SENTINEL_PASSWORD" in printed[0]
    assert any(state for state in ended.values()), "no results were read"
    assert logs, "the stack wrote no logs"
    haystacks = {**{f"log {name}": text for name, text in logs.items()},
                 **{f"printed #{n}": text for n, text in enumerate(printed)},
                 "results": repr(results), "dead letters": repr(dead),
                 "results read": repr(list(ended.values()))}
    leaks = {(where, secret) for where, text in haystacks.items() for secret in SECRETS if secret in text}
    assert leaks == set()
    # The wrong password was refused, and said so (without echoing either password).
    assert "podq worker: cannot start" in printed[4], printed[4]
