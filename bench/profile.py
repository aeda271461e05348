"""Where the CPU goes during a launch: py-spy samples every process of the stack while podq creates pods.

    .venv/bin/pip install py-spy          # not a dependency of podq; only this tool needs it
    .venv/bin/python -m bench.profile [--jobs 4000] [--latency 0.025] [--seconds 8] [--top 25]

Starts kubesim (create latency fixed, kubelet paused) and the embedded stack as ``bench.launch`` does,
submits ``--jobs`` jobs, and records each process (intake, the workers, the watcher, kubesim) with
``py-spy record --format raw`` for ``--seconds`` while they work. Prints, per process, the share of
samples spent in each function (self) and under it (inclusive), and leaves the raw stacks (flame-graph
input) under ``.podq/profile/``.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import KubeSettings, load_settings
from podq.stack import Stack, StackOptions

from .common import kubesim_process, machine

OUT = Path(".podq/profile")


def summarize(path: Path, top: int) -> str:
    """Self and inclusive shares of the samples (py-spy ``--gil``: only the thread holding the GIL is sampled)."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = busy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue  # py-spy's raw output can hold a frame name it could not decode
        samples = int(count)
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ") and
                  not frame.startswith("thread ")]
        total += samples
        if not frames:
            continue
        busy += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            under[frame] += samples
    lines = [f"{busy} busy samples of {total}", "", "inclusive (busy samples under the function):"]
    lines += [f"  {100 * n / max(busy, 1):5.1f} %  {frame}" for frame, n in under.most_common(top)]
    lines += ["", "self (the function itself on top of the stack):"]
    lines += [f"  {100 * n / max(busy, 1):5.1f} %  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile")
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--latency", type=float, default=0.025)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=0, help="Celery threads per worker (0: derived)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=100, help="samples per second per process")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("bench.profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"profile of a launch at {args.latency * 1000:.0f} ms create latency ({machine()})")
    with kubesim_process("--kubelet-paused", "--latency", f"create={args.latency}") as (_, kubeconfig, admin, sim_pid):
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        options = StackOptions(workers=args.workers, worker_concurrency=args.worker_threads or None,
                               extra_env={"PODQ_WORKER_CREATE_RATE": "0"})  # the rest: the defaults
        with Stack(settings, options) as stack:
            client = connect(stack.redis_url)
            scheduler = f"prof-{uuid.uuid4().hex[:8]}"
            jobs = [KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="prof", task_id=f"t{i}",
                                                                          run_id=scheduler), command=["true"])
                    for i in range(args.jobs + 200)]
            submit_many(client, jobs[:200])  # warm-up
            deadline = time.monotonic() + 120
            while admin.stats()["creates"] < 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            targets = {name: process.pid for name, process in stack.processes.items()}
            targets["kubesim"] = sim_pid
            recorders = {name: subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate",
                                                 str(args.rate), "--duration", str(int(args.seconds)), "--nonblocking",
                                                 "--gil", "-o", str(OUT / f"{name}.txt")],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                         for name, pid in targets.items()}
            started = admin.stats()["creates"]
            feeder = threading.Thread(target=lambda: [submit_many(client, jobs[i:i + 500])
                                                      for i in range(200, len(jobs), 500)])
            feeder.start()
            began = time.monotonic()
            for name, recorder in recorders.items():
                _, error = recorder.communicate(timeout=args.seconds + 60)
                if recorder.returncode != 0:
                    print(f"py-spy on {name} failed: {error.decode()[-500:]}", file=sys.stderr)
            created = admin.stats()["creates"] - started
            feeder.join()
            print(f"{created} pods created while recording ({created / (time.monotonic() - began):.0f} pods/s)")
            client.close()
    for name in targets:
        path = OUT / f"{name}.txt"
        if path.exists():
            print(f"\n## {name}\n{summarize(path, args.top)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
