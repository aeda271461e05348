"""Submit → running latency at a steady arrival rate, through the whole embedded stack.

Jobs are submitted one at a time at ``--rate`` jobs/s (kubesim's kubelet steps at their
defaults of ~10 ms each); for each job the time from its XADD to the moment the
scheduler-side consumer reads its ``running`` result is recorded.

    .venv/bin/python -m bench.latency [--rate 100] [--seconds 20] [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit
from podq.broker.store.connection import connect
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import KubeSettings, load_settings
from podq.shared.states import State
from podq.stack import Stack, StackOptions

from .common import kubesim_process, machine, median, report, target, wait_until_watching


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def one_run(stack: Stack, *, rate: float, seconds: float) -> list[float]:
    scheduler = f"lat-{uuid.uuid4().hex[:8]}"
    client = connect(stack.redis_url, block_ms=200)
    reader = connect(stack.redis_url, block_ms=200)
    consumer = ResultsConsumer(reader, scheduler_id=scheduler, consumer="bench", block_ms=100)
    count = int(rate * seconds)
    submitted: dict[str, float] = {}
    latencies: dict[str, float] = {}
    done = threading.Event()

    def read_results():
        deadline = time.monotonic() + seconds + 60
        while len(latencies) < count and time.monotonic() < deadline:
            batch = consumer.read()
            now = time.monotonic()
            for result in batch:
                if result.state is State.RUNNING and result.job_id in submitted:
                    latencies.setdefault(result.job_id, now - submitted[result.job_id])
            consumer.ack(batch)
        done.set()

    reader_thread = threading.Thread(target=read_results, name="bench-reader")
    reader_thread.start()
    start = time.monotonic()
    for index in range(count):
        due = start + index / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # pacing the arrival rate, not waiting for a condition
        job = KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="lat", task_id=f"t{index}", run_id=scheduler),
                                command=["true"], pod_override={"metadata": {"annotations": {"kubesim.podq.io/run-seconds": "0.5"}}})
        submitted[job.job_id] = time.monotonic()
        submit(client, job)
    done.wait()
    reader_thread.join()
    if len(latencies) < count:
        raise RuntimeError(f"only {len(latencies)}/{count} jobs reported running")
    return [value * 1000 for value in latencies.values()]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="bench.latency")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kubelet-step", type=float, default=None,
                        help="seconds per simulated kubelet step (kubesim's default: 0.01, ~40 ms to Running)")
    args = parser.parse_args(argv)
    p50s, p99s = [], []
    steps = ("schedule", "start", "sandbox", "ready")
    kubelet = [] if args.kubelet_step is None else [f for step in steps for f in (f"--kubelet-{step}", str(args.kubelet_step))]
    with kubesim_process(*kubelet) as (url, kubeconfig, admin, _pid):
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        with Stack(settings, StackOptions(workers=2, worker_concurrency=8,
                                          extra_env={"PODQ_WORKER_CREATE_RATE": "0"})) as stack:
            wait_until_watching(admin)
            one_run(stack, rate=args.rate, seconds=2)  # warm-up
            for _ in range(args.runs):
                values = one_run(stack, rate=args.rate, seconds=args.seconds)
                p50s.append(statistics.median(values))
                p99s.append(percentile(values, 0.99))
    kubelet_note = "kubesim's default kubelet steps" if args.kubelet_step is None else f"kubelet steps of {args.kubelet_step * 1000:g} ms"
    text = report(f"Submit → running at {args.rate:.0f} jobs/s for {args.seconds:.0f} s, {kubelet_note} ({machine()})", [
        ("p50 latency", p50s, "ms"), ("p99 latency", p99s, "ms")])
    text += f"\n\np99 median **{median(p99s):.0f} ms**, worst run **{max(p99s):.0f} ms** (target ≤ 100 ms in every run)"
    print(text, flush=True)
    target(f"submit → running p99 at {args.rate:.0f} jobs/s, worst of {args.runs} runs ({kubelet_note})", max(p99s),
           goal=100, unit="ms", higher_is_better=False)
    return text


if __name__ == "__main__":
    main()
