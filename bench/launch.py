"""Launch throughput and CPU per pod: podq against direct concurrent creators, one kubesim, side by side.

Every creator talks to the same kubesim (its own process, a fixed create latency, kubelet
paused so only creates cost), in turn, in each run:

* a serial creator (one thread, the official client): the floor;
* direct concurrent creators with as many threads as podq has creates in flight
  (workers × create slots), creating the same pods podq's workers build (marked done, so
  outside the watcher's selector): the official client with a dict body, and the same
  client's pool sent pre-serialized bodies (podq's own hot path, ``PodCalls``); the
  better of the two is "the best direct creator";
* podq: jobs submitted → pods accepted by the API, through intake, Celery and the workers,
  with the watcher running as in production.

For each, the CPU seconds spent by every process involved (podq: intake, workers, watcher,
Valkey, kubesim and the submitter; a direct creator: itself and kubesim) per 1,000 pods, kubesim's
part of it, and the creates kubesim saw in flight (sampled every 50 ms).

    .venv/bin/python -m bench.launch [--jobs 1500] [--latency 0.025] [--runs 3]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import threading
import time
import uuid
from typing import Callable

import orjson
from kubernetes import client as k8s

from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.shared import naming
from podq.shared.kubeclient import PodCalls, api_client
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import KubeSettings, load_settings
from podq.stack import Stack, StackOptions
from podq.workers.podspec import build_pod
from podq.workers.templates import template_store

from .common import cpu_seconds, kubesim_process, machine, median, spread, target, wait_until_watching


def pod_body(name: str) -> dict:
    """The pod podq's worker builds for a bench job (the default template, podq's labels, annotations, env),
    under ``name`` and marked done, so that it is the same create for kubesim but outside the watcher's selector."""
    job = KubernetesJob.new(scheduler_id="bench-direct", key=TaskKey(dag_id="bench", task_id=name, run_id="direct"),
                            command=["true"])
    pod = build_pod(job, template=_TEMPLATES.get(None), namespace="default")
    pod["metadata"]["name"] = name
    pod["metadata"]["labels"][naming.EXECUTOR_DONE] = "True"
    return pod


_TEMPLATES = template_store(None)


class InFlight:
    """Samples kubesim's count of API requests being handled, every 50 ms, while a creator runs."""

    def __init__(self, admin) -> None:
        self._admin = admin
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-inflight", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(self._admin.stats()["inFlight"])

    def __enter__(self) -> "InFlight":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def typical(self) -> float:
        """The median of the samples taken while creates were running (the busy part of the run)."""
        busy = [sample for sample in self.samples if sample > 0]
        return statistics.median(busy) if busy else 0.0


class Measured:
    """One creator's runs: pods/s, CPU seconds per 1,000 pods, creates in flight."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.rates: list[float] = []
        self.cpu: list[float] = []
        self.in_flight: list[float] = []
        self.kubesim: list[float] = []

    def add(self, count: int, seconds: float, cpu: float, in_flight: float, kubesim: float) -> None:
        self.rates.append(count / seconds)
        self.cpu.append(cpu * 1000 / count)
        self.in_flight.append(in_flight)
        self.kubesim.append(kubesim * 1000 / count)

    def row(self) -> str:
        return (f"| {self.label} | {', '.join(f'{r:.0f}' for r in self.rates)} | **{median(self.rates):.0f}** "
                f"({spread(self.rates)}) | {median(self.cpu):.2f} ({spread(self.cpu)}) | {median(self.kubesim):.2f} | "
                f"{median(self.in_flight):.0f} |")


def timed(pids: list[int], sim_pid: int, admin, run) -> tuple[float, float, float, float]:
    """Run ``run()``; returns its seconds, the CPU seconds ``pids`` spent, the creates in flight, and the
    CPU seconds kubesim (``sim_pid``, one of ``pids``) spent. The seconds are its wall time, or, when
    ``run()`` returns a callable, what that says (asked after the CPU time is taken)."""
    cpu_before, sim_before = cpu_seconds(pids), cpu_seconds([sim_pid])
    with InFlight(admin) as sampler:
        started = time.perf_counter()
        own = run()
        seconds = time.perf_counter() - started
    cpu, sim = cpu_seconds(pids) - cpu_before, cpu_seconds([sim_pid]) - sim_before
    if callable(own):
        seconds = own()
    return seconds, cpu, sampler.typical(), sim


def official_client(kubeconfig: str, pool: int) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api_client(KubeSettings(kubeconfig=kubeconfig), pool_size=pool))


def serial(api: k8s.CoreV1Api, count: int) -> None:
    prefix = uuid.uuid4().hex[:8]
    for index in range(count):
        api.create_namespaced_pod("default", pod_body(f"serial-{prefix}-{index}"), _preload_content=False).read()


def direct_official(api: k8s.CoreV1Api, count: int, threads: int) -> None:
    prefix = uuid.uuid4().hex[:8]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: api.create_namespaced_pod("default", pod_body(f"direct-{prefix}-{i}"),
                                                          _preload_content=False).read(), range(count)))


def direct_preserialized(calls: PodCalls, count: int, threads: int) -> None:
    prefix = uuid.uuid4().hex[:8]

    def create(index: int) -> None:
        answer = calls.create("default", orjson.dumps(pod_body(f"raw-{prefix}-{index}")), timeout=30)
        if answer.status != 201:
            raise RuntimeError(f"create answered {answer.status}")
        orjson.loads(answer.data)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(count)))


def through_podq(stack: Stack, admin, count: int) -> Callable[[], float]:
    """Submit ``count`` jobs and wait until their pods exist; returns what tells the seconds from the first
    submission to kubesim's acceptance of the last pod (called after the CPU time is taken: reading
    kubesim's audit log costs it CPU that is not podq's)."""
    client = connect(stack.redis_url)
    scheduler = f"bench-{uuid.uuid4().hex[:8]}"
    jobs = [KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="bench", task_id=f"t{i}", run_id=scheduler),
                              command=["true"]) for i in range(count)]
    names = {naming.pod_name_for(job.job_id, job.key) for job in jobs}
    # stats() is a constant-size answer; reading the whole audit log while podq creates would
    # spend kubesim's core on serializing it, a cost the other creators do not pay.
    before = admin.stats()["creates"]
    started = time.time()  # kubesim's audit log times are epoch seconds on the same machine
    for start in range(0, count, 500):
        submit_many(client, jobs[start:start + 500])
    deadline = time.monotonic() + 300
    while admin.stats()["creates"] - before < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {admin.stats()['creates'] - before}/{count} pods created in 300 s")
        time.sleep(0.05)  # polling a counter (the bench's own clock), not waiting for a condition blindly
    client.close()
    # The end is when kubesim accepted the last of these pods (as a direct creator's run ends when its
    # last create answers), not when this 50 ms poll noticed.
    return lambda: max(item["time"] for item in admin.creates() if item["name"] in names) - started


def stack_pids(stack: Stack) -> list[int]:
    return list(stack_processes(stack).values())


def stack_processes(stack: Stack) -> dict[str, int]:
    """The stack's processes by name (intake, worker-N, watcher, valkey)."""
    named = {name: process.pid for name, process in stack.processes.items()}
    if stack.redis is not None and stack.redis.process is not None:
        named["valkey"] = stack.redis.process.pid
    return named


def podq_breakdown(processes: dict[str, int], count: int, run, split: dict[str, float]):
    """Run ``run()`` and return what it returns; ``split`` gets the CPU milliseconds per pod each named
    process spent meanwhile."""
    before = {name: cpu_seconds([pid]) for name, pid in processes.items()}
    result = run()
    split.update({name: (cpu_seconds([pid]) - before[name]) * 1000 / count for name, pid in processes.items()})
    return result


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="bench.launch")
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--serial-jobs", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.025, help="kubesim create latency, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--creates-in-flight", type=int, default=64, help="create slots per worker process")
    parser.add_argument("--worker-threads", type=int, default=0,
                        help="Celery threads per worker (0: derived, PODQ_WORKER_CONCURRENCY's default)")
    parser.add_argument("--jobs-per-message", type=int, default=32)
    parser.add_argument("--direct-threads", type=int, default=None,
                        help="direct creators' threads (default: podq's creates in flight)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--create-rate", type=float, default=0, help="podq's shared create limit (0: off)")
    args = parser.parse_args(argv)
    in_flight = args.workers * args.creates_in_flight
    threads = args.direct_threads or in_flight
    me = os.getpid()
    serial_row = Measured("serial (1 thread, official client)")
    official_row = Measured(f"direct, official client ({threads} threads)")
    raw_row = Measured(f"direct, pre-serialized over the client's pool ({threads} threads)")
    podq_row = Measured(f"podq ({args.workers} workers × {args.creates_in_flight} create slots = {in_flight} in flight "
                        f"at most; {args.jobs_per_message} jobs per message)")
    load_before = os.getloadavg()
    with kubesim_process("--kubelet-paused", "--latency", f"create={args.latency}") as (_, kubeconfig, admin, sim_pid):
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        # The shared create-rate limit is a safety valve for real API servers; this measures capacity.
        options = StackOptions(workers=args.workers, worker_concurrency=args.worker_threads or None,
                               extra_env={"PODQ_WORKER_CREATE_RATE": str(args.create_rate),
                                          "PODQ_WORKER_CREATES_IN_FLIGHT": str(args.creates_in_flight),
                                          "PODQ_INTAKE_JOBS_PER_MESSAGE": str(args.jobs_per_message)})
        official = official_client(kubeconfig, threads)
        raw = PodCalls(api_client(KubeSettings(kubeconfig=kubeconfig), pool_size=threads))
        with Stack(settings, options) as stack:
            wait_until_watching(admin)
            through_podq(stack, admin, min(200, args.jobs))  # warm-up: imports, connections
            direct_official(official, min(200, args.jobs), threads)
            direct_preserialized(raw, min(200, args.jobs), threads)
            podq_pids = [*stack_pids(stack), sim_pid, me]
            named = {**stack_processes(stack), "kubesim": sim_pid, "submitter (this process)": me}
            parts: dict[str, list[float]] = {name: [] for name in named}
            for _ in range(args.runs):
                serial_row.add(args.serial_jobs, *timed([me, sim_pid], sim_pid, admin,
                                                        lambda: serial(official, args.serial_jobs)))
                official_row.add(args.jobs, *timed([me, sim_pid], sim_pid, admin,
                                                   lambda: direct_official(official, args.jobs, threads)))
                raw_row.add(args.jobs, *timed([me, sim_pid], sim_pid, admin,
                                              lambda: direct_preserialized(raw, args.jobs, threads)))
                split: dict[str, float] = {}
                podq_row.add(args.jobs, *timed(podq_pids, sim_pid, admin, lambda: podq_breakdown(
                    named, args.jobs, lambda: through_podq(stack, admin, args.jobs), split)))
                for name, value in split.items():
                    parts[name].append(value)
        official.api_client.close()
    best = max((official_row, raw_row), key=lambda row: median(row.rates))
    lines = [f"### Launch at {args.latency * 1000:.0f} ms create latency ({args.jobs} pods per run, {args.runs} runs; "
             f"{machine()}; load average before {load_before[0]:.1f})", "",
             "| creator | runs (pods/s) | median (min–max) | CPU-s per 1,000 pods, whole system (min–max) | "
             "of which kubesim | creates in flight at kubesim (median) |", "| --- | --- | --- | --- | --- | --- |",
             *(row.row() for row in (serial_row, official_row, raw_row, podq_row)), ""]
    ratio = 100 * median(podq_row.rates) / median(best.rates)
    lines.append(f"podq / best direct ({best.label}) = **{ratio:.0f} %**; podq / serial = "
                 f"**{median(podq_row.rates) / median(serial_row.rates):.1f}×**")
    lines += ["", "Where podq's CPU goes (CPU milliseconds per pod, median of the runs): " + "; ".join(
        f"{name} {median(values):.2f}" for name, values in parts.items())]
    text = "\n".join(lines)
    print(text, flush=True)
    latency = f"{args.latency * 1000:.0f} ms"
    target(f"launch at {latency}: podq / best direct creator at {threads} in flight, median", ratio, goal=90, unit="%")
    target(f"whole-system CPU-seconds per 1,000 pods through podq (launch at {latency}), median",
           median(podq_row.cpu), goal=1.2, unit="CPU-s", higher_is_better=False)
    return text


if __name__ == "__main__":
    main()
