"""Launch throughput: podq against a serial creator and a direct concurrent creator, one kubesim.

All three create pods through the official client against the same kubesim (its own
process, a fixed create latency, kubelet paused so only creates cost). podq's figure is
jobs submitted → pods created, through intake, Celery and the workers, with the watcher
running as in production.

    .venv/bin/python -m bench.launch [--jobs 1500] [--latency 0.025] [--runs 3]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import time
import uuid

from kubernetes import client as k8s, config as k8s_config

from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import KubeSettings, load_settings
from podq.stack import Stack, StackOptions

from .common import kubesim_process, machine, median, report


def pod_body(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "direct"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox", "args": ["true"]}]}}


def core_api(kubeconfig: str, pool: int) -> k8s.CoreV1Api:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    return k8s.CoreV1Api(k8s.ApiClient(configuration))


def serial(kubeconfig: str, count: int) -> float:
    api = core_api(kubeconfig, 1)
    prefix = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    for index in range(count):
        api.create_namespaced_pod("default", pod_body(f"serial-{prefix}-{index}"), _preload_content=False)
    return count / (time.perf_counter() - started)


def direct_concurrent(kubeconfig: str, count: int, threads: int) -> float:
    api = core_api(kubeconfig, threads)
    prefix = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: api.create_namespaced_pod("default", pod_body(f"direct-{prefix}-{i}"),
                                                          _preload_content=False), range(count)))
    return count / (time.perf_counter() - started)


def through_podq(stack: Stack, admin, count: int) -> float:
    client = connect(stack.redis_url)
    scheduler = f"bench-{uuid.uuid4().hex[:8]}"
    jobs = [KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="bench", task_id=f"t{i}", run_id=scheduler),
                              command=["true"]) for i in range(count)]
    # stats() is a constant-size answer; reading the whole audit log while podq creates would
    # spend kubesim's core on serializing it, a cost the other creators do not pay.
    before = admin.stats()["creates"]
    started = time.perf_counter()
    for start in range(0, count, 500):
        submit_many(client, jobs[start:start + 500])
    deadline = time.monotonic() + 300
    while admin.stats()["creates"] - before < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {admin.stats()['creates'] - before}/{count} pods created in 300 s")
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    client.close()
    return count / elapsed


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="bench.launch")
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--serial-jobs", type=int, default=150)
    parser.add_argument("--latency", type=float, default=0.025, help="kubesim create latency, seconds")
    parser.add_argument("--threads", type=int, default=64, help="direct creator's threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--create-rate", type=float, default=0, help="podq's shared create limit (0: off)")
    args = parser.parse_args(argv)
    rows = {"serial": [], "direct": [], "podq": []}
    with kubesim_process("--kubelet-paused", "--latency", f"create={args.latency}") as (url, kubeconfig, admin):
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        # The shared create-rate limit is a safety valve for real API servers; this measures capacity.
        options = StackOptions(workers=args.workers, worker_concurrency=args.worker_threads,
                               extra_env={"PODQ_WORKER_CREATE_RATE": str(args.create_rate)})
        with Stack(settings, options) as stack:
            through_podq(stack, admin, min(200, args.jobs))  # warm-up: imports, connections
            for _ in range(args.runs):
                rows["serial"].append(serial(kubeconfig, args.serial_jobs))
                rows["direct"].append(direct_concurrent(kubeconfig, args.jobs, args.threads))
                rows["podq"].append(through_podq(stack, admin, args.jobs))
    text = report(f"Launch throughput, pods/s ({args.jobs} pods, create latency {args.latency * 1000:.0f} ms, {machine()})", [
        ("serial creator (1 thread, official client)", rows["serial"], "pods/s"),
        (f"direct concurrent creator ({args.threads} threads, official client)", rows["direct"], "pods/s"),
        (f"podq ({args.workers} workers × {args.worker_threads} threads, submit → created)", rows["podq"], "pods/s"),
    ])
    text += (f"\n\npodq / serial = **{median(rows['podq']) / median(rows['serial']):.1f}×** (target ≥ 10×); "
             f"podq / direct = **{100 * median(rows['podq']) / median(rows['direct']):.0f} %** (target ≥ 70 %)")
    print(text)
    return text


if __name__ == "__main__":
    main()
