"""The watcher's event rate: real watch lines from kubesim replayed through the watcher's processing path.

    .venv/bin/python -m bench.watcher_events --runs 3 [--pods 3000]

Setup: kubesim in its own process (fast kubelet); a raw watch records every line while ``--pods`` pods
go through their whole life (ADDED, scheduled, creating, sandbox, running, succeeded/failed, teardown:
about 7 events per pod, ~2 KB each). Then, per run, in this process, against the embedded Valkey
(emptied first): the recorded lines go through exactly what the watch loop does with what its reader
thread hands it — orjson decode, the typed pod view, classification, the tracker, one publish-script call
per batch of 500 (lease check, results, pod states, position) and the completion requests. The HTTP read
is left out (kubesim's own rate, ~66,000 lines/s, is in docs/kubesim.md).

Reported: events/s and results/s (results = pending + running + terminal, three per pod).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import cpu_seconds, kubesim_process, machine, median, report, target


def record(kubeconfig: str, pods: int) -> list[bytes]:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from podq.shared import naming
    from podq.shared.records import TaskKey

    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration, persist_config=False)
    configuration.connection_pool_maxsize = 16
    api = k8s.CoreV1Api(k8s.ApiClient(configuration))
    response = api.list_namespaced_pod("default", watch=True, label_selector=naming.podq_selector(),
                                       _preload_content=False, _request_timeout=(5, 5))
    lines: list[bytes] = []

    def read() -> None:
        carry = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                parts = (carry + chunk).split(b"\n")
                carry = parts.pop()
                lines.extend(line for line in parts if line)
        except Exception:  # noqa: BLE001 - the read timeout ends the recording
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def create(index: int) -> None:
        key = TaskKey(dag_id="bench", task_id=f"t{index}", run_id="events")
        job_id = naming.derive_job_id("bench", key)
        annotations = naming.pod_annotations(job_id=job_id, scheduler_id="bench", key=key)
        if index % 10 == 0:
            annotations["kubesim.podq.io/outcome"] = "Failed"
        body = {"metadata": {"name": naming.pod_name_for(job_id, key),
                             "labels": naming.pod_labels(job_id=job_id, scheduler_id="bench", key=key),
                             "annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "apache/airflow:3.1.0"}]}}
        api.create_namespaced_pod("default", body, _preload_content=False).data

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(create, range(pods), chunksize=64))
    reader.join(120)
    api.api_client.close()
    return lines


class NoKube:
    """The API server of a replay: nothing is asked of it but, with PODQ_WATCHER_FAILURE_LOG_LINES set, a
    failed pod's log tail, which it does not have."""

    def tail_log(self, namespace: str, name: str, container: str, lines: int) -> None:
        return None


def replay(redis_url: str, lines: list[bytes], batch: int, *, redis_pid: int | None = None
           ) -> tuple[float, float, float]:
    """Events/s and results/s (wall clock), and events per CPU-second of this process and Valkey together."""
    from podq.broker.store import keys
    from podq.broker.store.connection import connect
    from podq.shared.settings import WatcherSettings
    from podq.watcher.health import Health
    from podq.watcher.publishing import Broker, Scope
    from podq.watcher.scope import ScopeRunner
    from podq.watcher.tracker import Tracker

    client = connect(redis_url)
    client.flushall()
    broker = Broker.open(client)
    _, token = broker.store.hold("default", holder="bench", token=None, ttl=600)
    runner = ScopeRunner(scope=Scope.of("default"), token=token, broker=broker, kube=NoKube(),
                         settings=WatcherSettings(batch_size=batch), health=Health("/dev/null", instance="bench"))
    runner.tracker = Tracker()
    cpu = time.process_time() + cpu_seconds([redis_pid] if redis_pid else [])
    started = time.perf_counter()
    for start in range(0, len(lines), batch):
        runner._handle(lines[start:start + batch])
    seconds = time.perf_counter() - started
    cpu = time.process_time() + cpu_seconds([redis_pid] if redis_pid else []) - cpu
    results = client.xlen(keys.results_stream("bench"))
    client.close()
    return len(lines) / seconds, results / seconds, len(lines) / cpu


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.watcher_events")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pods", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    from podq.broker.embedded import EmbeddedRedis

    with EmbeddedRedis() as server, kubesim_process("--default-run-seconds", "0.2", "--history-size", "200000",
                                                    *[f"--kubelet-{step}=0.01" for step in ("schedule", "start")]
                                                    ) as (_, kubeconfig, _admin, _pid):
        lines = record(kubeconfig, args.pods)
        print(f"recorded {len(lines)} watch lines ({sum(map(len, lines)) / len(lines):.0f} bytes on average)",
              file=sys.stderr)
        events, results, per_cpu = [], [], []
        replay(server.url, lines, args.batch)  # warm-up: imports, script loading
        for _ in range(args.runs):
            per_second, results_per_second, per_cpu_second = replay(server.url, lines, args.batch,
                                                                    redis_pid=server.process.pid)
            events.append(per_second)
            results.append(results_per_second)
            per_cpu.append(per_cpu_second)
    print(report(f"Watcher events ({machine()}; {len(lines)} recorded lines of {args.pods} pods, batches of "
                 f"{args.batch})", [("pod events processed per second", events, "events/s"),
                                    ("results published per second", results, "results/s"),
                                    ("pod events per CPU-second of the watcher and Valkey together (about the "
                                     "rate with a free core each; heavy load inflates CPU per event too)", per_cpu,
                                     "events/CPU-s")]))
    target("watcher pod events per second, one process, median", median(events), goal=30_000, unit="events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
