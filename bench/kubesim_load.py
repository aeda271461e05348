"""Load test for kubesim: creates per second and watch events per second, on one server core.

    .venv/bin/python bench/kubesim_load.py --runs 5

The server runs as its own process pinned to CPU 0 (kubesim is a single asyncio loop, so one core is all it
uses); this load generator is pinned to CPU 1. Each run starts a fresh server. Reported: the median of the runs.

* creates/s: ``--creates`` POSTs from ``--concurrency`` keep-alive connections, kubelet paused (pure API cost),
  and again with the kubelet running (each pod then also goes through ~7 status writes while the creates land).
* watch events/s: ``--watchers`` open watches on all pods, then pods are created with the kubelet running; the
  rate is the number of event lines the watchers receive over the time from the first create to the last line.
* CPU per create, as in ``bench.launch``: kubesim started as the launch benchmark starts it (kubelet paused, a
  fixed create latency), one watch open with the watcher's selector, ``--cpu-creates`` podq-shaped pods created
  from ``--cpu-concurrency`` connections; reported: kubesim's own CPU milliseconds per create (``--only cpu``
  runs just this one, the quick way to compare two versions of kubesim).
* CPU per pod's life: the same with the kubelet running (1 ms steps, 0.2 s runs), until the watch has seen every
  pod's 7 events (ADDED, then 6 status writes to Succeeded): kubesim's CPU milliseconds per pod (``--only life``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson

_LINE = re.compile(r"(?P<url>http://\S+) kubeconfig=")
NS = "default"


@contextmanager
def kubesim(*args: str) -> Iterator[str]:
    """A fresh kubesim process pinned to the first CPU: its URL."""
    with kubesim_process(*args) as (url, _pid):
        yield url


@contextmanager
def kubesim_process(*args: str) -> Iterator[tuple[str, int]]:
    workdir = Path(tempfile.mkdtemp(prefix="kubesim-load-"))
    cpus = sorted(os.sched_getaffinity(0))
    pin = (lambda: os.sched_setaffinity(0, {cpus[0]})) if len(cpus) > 1 else None
    process = subprocess.Popen(
        [sys.executable, "-m", "podq.kubesim", "--port", "0", "--kubeconfig", str(workdir / "kubeconfig"),
         "--log-level", "WARNING", *args],
        stdout=subprocess.PIPE, text=True, preexec_fn=pin,
    )
    try:
        assert process.stdout is not None
        match = _LINE.search(process.stdout.readline())
        if match is None:
            raise SystemExit("kubesim did not start")
        yield match.group("url"), process.pid
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def podq_pod_body(index: int) -> bytes:
    """A pod as podq's workers build it (labels and annotations the watcher's selector reads)."""
    job_id = f"{index:032x}"
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"bench-t{index}-{job_id[:16]}", "namespace": NS,
                     "labels": {"dag_id": "bench", "task_id": f"t{index}", "run_id": "bench-load", "try_number": "1",
                                "kubernetes_executor": "True", "airflow-worker": "bench-load", "podq.io/job-id": job_id},
                     "annotations": {"dag_id": "bench", "task_id": f"t{index}", "run_id": "bench-load", "try_number": "1",
                                     "podq.io/job-id": job_id, "podq.io/scheduler-id": "bench-load"}},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "base", "image": "apache/airflow:3.3.2", "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}, "args": ["true"],
            "env": [{"name": "AIRFLOW_IS_K8S_EXECUTOR_POD", "value": "True"}]}]},
    })


def pod_body(index: int) -> bytes:
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"load-{index}", "labels": {"app": "load", "airflow-worker": "1"},
                     "annotations": {"kubesim.podq.io/run-seconds": "0.2"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "apache/airflow:3.1.0",
                 "command": ["python", "-c", "print(1)"]}]},
    })


async def create_all(session: aiohttp.ClientSession, url: str, *, count: int, concurrency: int,
                     body=pod_body) -> float:
    bodies = [body(i) for i in range(count)]
    queue = list(range(count))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    async def worker() -> None:
        while queue:
            index = queue.pop()
            async with session.post(f"{url}/api/v1/namespaces/{NS}/pods", data=bodies[index], headers=headers) as resp:
                await resp.read()
                if resp.status != 201:
                    raise SystemExit(f"create failed: {resp.status}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def admin(session: aiohttp.ClientSession, url: str, path: str) -> None:
    async with session.post(f"{url}/_kubesim{path}") as resp:
        await resp.read()


async def measure_creates(url: str, *, count: int, concurrency: int, paused: bool) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        if paused:
            await admin(session, url, "/kubelet/pause")
        return await create_all(session, url, count=count, concurrency=concurrency)


async def measure_watch(url: str, *, count: int, watchers: int, concurrency: int) -> tuple[float, int]:
    connector = aiohttp.TCPConnector(limit=concurrency + watchers + 2)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        received = [0] * watchers
        last_line = [0.0]
        streams = []
        for _ in range(watchers):
            resp = await session.get(f"{url}/api/v1/namespaces/{NS}/pods",
                                     params={"watch": "true", "timeoutSeconds": "120", "labelSelector": "app=load"})
            streams.append(resp)
        async with session.get(f"{url}/_kubesim/stats") as resp:
            assert (await resp.json())["watches"] == watchers

        async def drain(index: int, resp: aiohttp.ClientResponse) -> None:
            async for chunk in resp.content.iter_any():
                received[index] += chunk.count(b"\n")
                last_line[0] = time.perf_counter()

        readers = [asyncio.create_task(drain(i, r)) for i, r in enumerate(streams)]
        started = time.perf_counter()
        await create_all(session, url, count=count, concurrency=concurrency)
        # every pod ends Succeeded after 7 writes past ADDED: wait until the event counts stop growing
        expected = count * 7
        deadline = time.perf_counter() + 60
        while min(received) < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        total = sum(received)
        elapsed = last_line[0] - started
        async with session.post(f"{url}/_kubesim/watches/close", json={}) as resp:
            await resp.read()
        await asyncio.gather(*readers, return_exceptions=True)
        for resp in streams:
            resp.release()
        return total / elapsed, total


WATCHER_SELECTOR = "kubernetes_executor=True,podq.io/job-id,airflow_executor_done!=True"


async def measure_cpu(url: str, pid: int, *, count: int, concurrency: int, events_per_pod: int = 1) -> float:
    """kubesim's CPU milliseconds per pod: ``count`` creates, until one watch (the watcher's selector) has received
    ``events_per_pod`` events of each (1: the ADDED; 7: a whole life with the kubelet running)."""
    connector = aiohttp.TCPConnector(limit=concurrency + 2)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        stream = await session.get(f"{url}/api/v1/pods", params={
            "watch": "true", "timeoutSeconds": "300", "labelSelector": WATCHER_SELECTOR, "allowWatchBookmarks": "true"})
        received = [0]

        async def drain() -> None:
            async for chunk in stream.content.iter_any():
                received[0] += chunk.count(b"\n")

        reader = asyncio.create_task(drain())
        before = cpu_seconds(pid)
        await create_all(session, url, count=count, concurrency=concurrency, body=podq_pod_body)
        expected = count * events_per_pod
        deadline = time.perf_counter() + 60
        while received[0] < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        spent = cpu_seconds(pid) - before
        if received[0] < expected:
            raise SystemExit(f"the watch saw {received[0]} of {expected} events")
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        stream.release()
        return spent * 1000 / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--watch-creates", type=int, default=1500)
    parser.add_argument("--cpu-creates", type=int, default=3000)
    parser.add_argument("--cpu-concurrency", type=int, default=128)
    parser.add_argument("--cpu-latency", type=float, default=0.025, help="create latency for the CPU measure, seconds")
    parser.add_argument("--only", choices=["cpu", "life"], default=None, help="run only this measure")
    parser.add_argument("--kubesim-arg", action="append", default=[], metavar="FLAG",
                        help="pass this flag to every kubesim started, e.g. --kubesim-arg=--limit-rate=2000 (repeatable)")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[1]})
    fast = ["--kubelet-schedule", "0.001", "--kubelet-start", "0.001", "--kubelet-sandbox", "0.001",
            "--kubelet-ready", "0.001", "--kubelet-teardown", "0.001", "--default-run-seconds", "0.2", *args.kubesim_arg]
    paused, running, events, cpu, life = [], [], [], [], []
    latency = ["--latency", f"create={args.cpu_latency}", *args.kubesim_arg]
    for run in range(args.runs):
        if args.only in (None, "cpu"):
            with kubesim_process("--kubelet-paused", *latency) as (url, pid):
                cpu.append(asyncio.run(measure_cpu(url, pid, count=args.cpu_creates, concurrency=args.cpu_concurrency)))
        if args.only in (None, "life"):
            with kubesim_process(*fast, *latency) as (url, pid):
                life.append(asyncio.run(measure_cpu(url, pid, count=args.cpu_creates, concurrency=args.cpu_concurrency,
                                                    events_per_pod=7)))
        if args.only is not None:
            print(f"run {run + 1}: kubesim CPU per {'create' if args.only == 'cpu' else 'pod life'} "
                  f"{(cpu or life)[-1]:.3f} ms", flush=True)
            continue
        with kubesim(*args.kubesim_arg) as url:
            paused.append(asyncio.run(measure_creates(url, count=args.creates, concurrency=args.concurrency, paused=True)))
        with kubesim(*fast) as url:
            running.append(asyncio.run(measure_creates(url, count=args.creates, concurrency=args.concurrency, paused=False)))
        with kubesim(*fast) as url:
            rate, total = asyncio.run(measure_watch(url, count=args.watch_creates, watchers=args.watchers, concurrency=args.concurrency))
            events.append(rate)
        print(f"run {run + 1}: creates/s paused {paused[-1]:.0f}, with kubelet {running[-1]:.0f}; "
              f"watch events/s {events[-1]:.0f} ({total} events to {args.watchers} watchers); "
              f"kubesim CPU per create {cpu[-1]:.3f} ms, per pod life {life[-1]:.3f} ms", flush=True)
    lines = []
    if cpu:
        lines.append(f"kubesim CPU per create (kubelet paused, {args.cpu_latency * 1000:.0f} ms create latency, one "
                     f"watch): {statistics.median(cpu):.3f} ms ({min(cpu):.3f}–{max(cpu):.3f})")
    if life:
        lines.append(f"kubesim CPU per pod life (kubelet running, one watch): {statistics.median(life):.3f} ms "
                     f"({min(life):.3f}–{max(life):.3f})")
    cpu_line = "; ".join(lines)
    if args.only is not None:
        print(f"median of {args.runs}: {cpu_line}")
        return 0
    print(f"median of {args.runs}: creates/s {statistics.median(paused):.0f} (kubelet paused), "
          f"{statistics.median(running):.0f} (kubelet running); watch events/s {statistics.median(events):.0f}; "
          f"{cpu_line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
