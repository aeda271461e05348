"""Worker processes × create slots × jobs per message: podq's launch rate and CPU per pod for each shape.

    .venv/bin/python -m bench.matrix [--shapes 2x64x32 1x64x32 ...] [--jobs 1500] [--runs 2] [--latency 0.025]

One kubesim (create latency fixed, kubelet paused) for the whole measurement; for each shape
WORKERSxSLOTSxJOBS_PER_MESSAGE a fresh stack (``PODQ_WORKER_CREATES_IN_FLIGHT`` = SLOTS, Celery
threads derived), a warm-up, then ``--runs`` launches of ``--jobs`` pods, interleaved with a direct
pre-serialized creator at the same creates in flight, so each shape is compared with the same
machine moment. The defaults (``PODQ_WORKER_CREATES_IN_FLIGHT``, ``PODQ_INTAKE_JOBS_PER_MESSAGE``,
two workers per host in the deployment files) were picked from it.
"""
from __future__ import annotations

import argparse
import os

from podq.shared.kubeclient import PodCalls, api_client
from podq.shared.settings import KubeSettings, load_settings
from podq.stack import Stack, StackOptions

from .common import kubesim_process, machine, median, spread
from .launch import Measured, direct_preserialized, stack_pids, through_podq, timed
from .common import wait_until_watching

DEFAULT_SHAPES = ["2x64x32", "1x64x32", "2x32x32", "3x43x32", "4x32x32", "2x128x32", "2x64x8", "2x64x16", "2x64x64"]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="bench.matrix")
    parser.add_argument("--shapes", nargs="*", default=DEFAULT_SHAPES)
    parser.add_argument("--jobs", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.025)
    args = parser.parse_args(argv)
    me = os.getpid()
    lines = [f"### Worker shapes at {args.latency * 1000:.0f} ms create latency ({args.jobs} pods per run, "
             f"{args.runs} runs each; {machine()})", "",
             "| workers × create slots × jobs per message (in flight) | podq pods/s: median (min–max) | "
             "direct pre-serialized at the same in flight | podq / direct | CPU-s per 1,000 pods, podq |",
             "| --- | --- | --- | --- | --- |"]
    with kubesim_process("--kubelet-paused", "--latency", f"create={args.latency}") as (_, kubeconfig, admin, sim_pid):
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        for shape in args.shapes:
            workers, slots, per_message = (int(part) for part in shape.split("x"))
            in_flight = workers * slots
            options = StackOptions(workers=workers,
                                   extra_env={"PODQ_WORKER_CREATE_RATE": "0", "PODQ_WORKER_CREATES_IN_FLIGHT": str(slots),
                                              "PODQ_INTAKE_JOBS_PER_MESSAGE": str(per_message)})
            raw = PodCalls(api_client(KubeSettings(kubeconfig=kubeconfig), pool_size=in_flight))
            podq_row, direct_row = Measured(shape), Measured("direct")
            with Stack(settings, options) as stack:
                wait_until_watching(admin)
                through_podq(stack, admin, 200)
                direct_preserialized(raw, 200, in_flight)
                pids = [*stack_pids(stack), sim_pid, me]
                for _ in range(args.runs):
                    direct_row.add(args.jobs, *timed([me, sim_pid], sim_pid, admin,
                                                     lambda: direct_preserialized(raw, args.jobs, in_flight)))
                    podq_row.add(args.jobs, *timed(pids, sim_pid, admin, lambda: through_podq(stack, admin, args.jobs)))
            row = (f"| {workers} × {slots} × {per_message} ({in_flight}) | **{median(podq_row.rates):.0f}** "
                   f"({spread(podq_row.rates)}) | {median(direct_row.rates):.0f} ({spread(direct_row.rates)}) | "
                   f"{100 * median(podq_row.rates) / median(direct_row.rates):.0f} % | {median(podq_row.cpu):.2f} |")
            print(row, flush=True)
            lines.append(row)
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
