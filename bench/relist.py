"""The watcher's relist: 20,000 pods listed (paged), diffed against the stored states, published.

    .venv/bin/python -m bench.relist --runs 3 [--pods 20000]

Setup: kubesim in its own process with the kubelet running and containers that run for an hour, so every
pod carries a full Running status (~2 KB of JSON); the embedded Valkey. Each run measures, in a fresh child
process (so its peak RSS is the watcher's alone):

* ``cold``: no stored state (a first start): the list publishes ``pending`` and ``running`` for every pod;
* ``after 410``: the states stored by the cold run are loaded (as a new leader does), then the relist
  finds nothing changed and publishes nothing — the common case after a 410.

Reported: seconds for the relist (list pages + diff + publish calls), seconds to load the stored states,
and the child's peak RSS.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import kubesim_process, machine, median, report, target


def peak_rss_mb() -> float:
    """This process's peak resident size (VmHWM: its own memory's, unlike ``ru_maxrss``, which keeps the
    size of the process it was forked from, across the exec: a large bench parent showed in every child)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    from podq.broker.store.connection import connect
    from podq.shared.settings import KubeSettings, WatcherSettings
    from podq.watcher.health import Health
    from podq.watcher.kube import KubePods
    from podq.watcher.publishing import Broker, Scope
    from podq.watcher.scope import ScopeRunner
    from podq.watcher.tracker import Tracker

    settings = WatcherSettings(list_page_size=args.page_size)
    broker = Broker.open(connect(args.redis))
    store = broker.store
    kube = KubePods(KubeSettings(kubeconfig=args.kubeconfig), settings)
    held, token = store.hold("default", holder="bench", token=None, ttl=600)
    assert held, token
    runner = ScopeRunner(scope=Scope.of("default"), token=token, broker=broker, kube=kube, settings=settings,
                         health=Health("/dev/null", instance="bench"))
    started = time.perf_counter()
    runner.tracker = Tracker.from_stored(store.states("default"))
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    runner.relist()
    seconds = time.perf_counter() - started
    store.release("default", token=token)
    rss_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "load": loaded, "rss_mb": rss_mb, "stored": len(runner.tracker)}))


def create_pods(kubeconfig: str, count: int, *, first: int = 0) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from podq.shared import naming
    from podq.shared.records import TaskKey

    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration, persist_config=False)
    configuration.connection_pool_maxsize = 16
    api = k8s.CoreV1Api(k8s.ApiClient(configuration))

    def create(index: int) -> None:
        key = TaskKey(dag_id="bench", task_id=f"t{index}", run_id="relist")
        job_id = naming.derive_job_id("bench", key)
        body = {"metadata": {"name": naming.pod_name_for(job_id, key),
                             "labels": naming.pod_labels(job_id=job_id, scheduler_id="bench", key=key),
                             "annotations": naming.pod_annotations(job_id=job_id, scheduler_id="bench", key=key)},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "apache/airflow:3.1.0"}]}}
        api.create_namespaced_pod("default", body, _preload_content=False).data

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(create, range(first, first + count), chunksize=64))
    api.api_client.close()


def measure(redis_url: str, kubeconfig: str, page_size: int) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.relist", "--child", "--redis", redis_url,
                           "--kubeconfig", kubeconfig, "--page-size", str(page_size)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.relist")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    from podq.broker.store.connection import connect
    from podq.broker.embedded import EmbeddedRedis

    with EmbeddedRedis() as server, kubesim_process("--default-run-seconds", "3600",
                                                    "--history-size", str(args.pods * 8)) as (_, kubeconfig, admin, _pid):
        started = time.monotonic()
        create_pods(kubeconfig, args.pods)
        while admin.stats()["pods"] < args.pods:
            time.sleep(0.5)
        time.sleep(3.0)  # let the kubelet bring every pod to Running
        print(f"created {args.pods} pods in {time.monotonic() - started:.1f} s", file=sys.stderr)
        client = connect(server.url)
        cold, warm = [], []
        for run in range(args.runs):
            client.flushall()
            cold.append(measure(server.url, kubeconfig, args.page_size))
            warm.append(measure(server.url, kubeconfig, args.page_size))
            print(f"run {run + 1}: cold {cold[-1]} after-410 {warm[-1]}", file=sys.stderr)
    rows = [(f"relist {args.pods} pods, cold (publishes pending+running each)", [r["seconds"] for r in cold], "s"),
            (f"relist {args.pods} pods after a 410 (states loaded, nothing changed)", [r["seconds"] for r in warm], "s"),
            (f"load {args.pods} stored states (becoming leader)", [r["load"] for r in warm], "s"),
            ("peak RSS of the watcher process, cold", [r["rss_mb"] for r in cold], "MB"),
            ("peak RSS of the watcher process, after 410", [r["rss_mb"] for r in warm], "MB")]
    print(report(f"Watcher relist ({machine()})", rows))
    target(f"relist of {args.pods} pods after a 410, median", median([r["seconds"] for r in warm]), goal=5.0,
           unit="s", higher_is_better=False)
    target("watcher peak RSS during a relist, worst run", max(r["rss_mb"] for r in cold + warm), goal=300, unit="MB",
           higher_is_better=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
