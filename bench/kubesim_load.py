"""Load test for kubesim: creates per second and watch events per second, on one server core.

    .venv/bin/python bench/kubesim_load.py --runs 5

The server runs as its own process pinned to CPU 0 (kubesim is a single asyncio loop, so one core is all it
uses); this load generator is pinned to CPU 1. Each run starts a fresh server. Reported: the median of the runs.

* creates/s: ``--creates`` POSTs from ``--concurrency`` keep-alive connections, kubelet paused (pure API cost),
  and again with the kubelet running (each pod then also goes through ~7 status writes while the creates land).
* watch events/s: ``--watchers`` open watches on all pods, then pods are created with the kubelet running; the
  rate is the number of event lines the watchers receive over the time from the first create to the last line.
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
        yield match.group("url")
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pod_body(index: int) -> bytes:
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"load-{index}", "labels": {"app": "load", "airflow-worker": "1"},
                     "annotations": {"kubesim.podq.io/run-seconds": "0.2"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "apache/airflow:3.1.0",
                 "command": ["python", "-c", "print(1)"]}]},
    })


async def create_all(session: aiohttp.ClientSession, url: str, *, count: int, concurrency: int) -> float:
    bodies = [pod_body(i) for i in range(count)]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--watch-creates", type=int, default=1500)
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[1]})
    fast = ["--kubelet-schedule", "0.001", "--kubelet-start", "0.001", "--kubelet-sandbox", "0.001",
            "--kubelet-ready", "0.001", "--kubelet-teardown", "0.001", "--default-run-seconds", "0.2"]
    paused, running, events = [], [], []
    for run in range(args.runs):
        with kubesim() as url:
            paused.append(asyncio.run(measure_creates(url, count=args.creates, concurrency=args.concurrency, paused=True)))
        with kubesim(*fast) as url:
            running.append(asyncio.run(measure_creates(url, count=args.creates, concurrency=args.concurrency, paused=False)))
        with kubesim(*fast) as url:
            rate, total = asyncio.run(measure_watch(url, count=args.watch_creates, watchers=args.watchers, concurrency=args.concurrency))
            events.append(rate)
        print(f"run {run + 1}: creates/s paused {paused[-1]:.0f}, with kubelet {running[-1]:.0f}; "
              f"watch events/s {events[-1]:.0f} ({total} events to {args.watchers} watchers)", flush=True)
    print(f"median of {args.runs}: creates/s {statistics.median(paused):.0f} (kubelet paused), "
          f"{statistics.median(running):.0f} (kubelet running); watch events/s {statistics.median(events):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
