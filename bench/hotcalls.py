"""Client-side CPU per pod create: the official client's generated method against podq's hot path.

    .venv/bin/python -m bench.hotcalls [--creates 1000] [--runs 3]

One kubesim process (kubelet paused); this process creates ``--creates`` pods one at a time with
each client in turn, per run, and measures its own CPU time (time.process_time) per create, so a
busy machine slows the runs but hardly changes the figure. The same pod (a worker's default pod)
goes out each way:

* the official client as a default ``Configuration`` leaves it (the environment's proxy re-read on
  each token refresh: before every request);
* the official client configured by podq's builder (``shared/kubeclient.api_client``);
* ``PodCalls.create`` over that same client: the body serialized by orjson, sent through the
  client's pool and authentication, the answer decoded by orjson.
"""
from __future__ import annotations

import argparse
import copy
import time

import orjson
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from podq.shared.kubeclient import PodCalls, api_client
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import KubeSettings
from podq.workers.podspec import build_pod
from podq.workers.templates import template_store

from .common import kubesim_process, machine, median, spread


def worker_pod() -> dict:
    job = KubernetesJob.new(scheduler_id="hot", key=TaskKey(dag_id="hot", task_id="calls", run_id="r"),
                            command=["echo", "hello"])
    return build_pod(job, template=template_store(None).get(None), namespace="default")


def cpu_per_create(create, pod: dict, count: int, prefix: str) -> float:
    pods = []
    for index in range(count):
        copied = copy.deepcopy(pod)
        copied["metadata"]["name"] = f"{prefix}-{index}"
        pods.append(copied)
    started = time.process_time()
    for item in pods:
        create(item)
    return (time.process_time() - started) / count * 1e6


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="bench.hotcalls")
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    pod = worker_pod()
    with kubesim_process("--kubelet-paused") as (_, kubeconfig, _admin, _pid):
        default_configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=default_configuration)
        plain = k8s.CoreV1Api(k8s.ApiClient(default_configuration))
        built = api_client(KubeSettings(kubeconfig=kubeconfig), pool_size=1)
        official = k8s.CoreV1Api(built)
        calls = PodCalls(built)
        ways = {
            "official client, default configuration": lambda body: plain.create_namespaced_pod(
                "default", body, _preload_content=False).read(),
            "official client, podq's configuration": lambda body: official.create_namespaced_pod(
                "default", body, _preload_content=False).read(),
            "podq's hot path (PodCalls, orjson both ways)": lambda body: orjson.loads(
                calls.create("default", orjson.dumps(body), timeout=30).data),
        }
        figures: dict[str, list[float]] = {name: [] for name in ways}
        for run in range(args.runs + 1):  # the first round warms up
            for number, (name, create) in enumerate(ways.items()):
                value = cpu_per_create(create, pod, args.creates, f"hot-{run}-{number}")
                if run:
                    figures[name].append(value)
        plain.api_client.close()
        built.close()
    lines = [f"### Client CPU per create ({args.creates} creates per run, {args.runs} runs; {machine()})", "",
             "| client | runs (µs) | median (min–max) |", "| --- | --- | --- |"]
    lines += [f"| {name} | {', '.join(f'{v:.0f}' for v in values)} | **{median(values):.0f} µs** ({spread(values)}) |"
              for name, values in figures.items()]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
