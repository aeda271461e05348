"""Does kubesim's model of the API server's limit hold? Completed creates/s against the set rate, 429s, latency, shares.

    .venv/bin/python -m bench.kubesim_limit --runs 3

Each case starts a fresh kubesim process (pinned to CPU 0, kubelet paused, 25 ms create latency as in
``bench.launch``) with ``--limit-rate C``, and hammers it from ``--connections`` keep-alive connections (this
process, pinned to CPU 1) for ``--seconds``; a 429 is retried at once (the clients do not back off: the
level must hold its rate under any pressure). Reported per case, over the time after the first two
seconds: the completed creates/s against C, the share of requests answered 429, the latency of the
completed creates (p50/p99), the largest Retry-After seen and kubesim's CPU use (near 100 %: kubesim's own
CPU, not the model, is then the limit).

* ``rate C``: default queues (nothing refused while the connections fit in the seats and the flow's queues);
* ``rate C, short queues``: ``--limit-queue-length 2``: the connections no longer fit, so 429s come;
* ``fair``: two identities (bearer tokens) with 3/4 and 1/4 of the connections: the share the smaller one
  gets (fair queuing: about half; first come, first served would give it a quarter).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from bench.kubesim_load import NS, cpu_seconds, kubesim_process, podq_pod_body

WARMUP = 2.0


@dataclass
class Tally:
    """What the clients of one flow saw."""

    done: list[float] = field(default_factory=list)
    """completion times of the creates answered 201"""
    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    retry_after: int = 0


async def hammer(url: str, *, flows: dict[str, int], seconds: float) -> tuple[dict[str, Tally], float]:
    """``flows``: bearer token -> connections. Returns each flow's tally and the time the load started."""
    names = itertools.count()
    tallies = {token: Tally() for token in flows}
    started = time.perf_counter()
    stop = started + seconds

    async def client(session: aiohttp.ClientSession, token: str) -> None:
        tally = tallies[token]
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Authorization": f"Bearer {token}"}
        while time.perf_counter() < stop:
            body = podq_pod_body(next(names))
            sent = time.perf_counter()
            async with session.post(f"{url}/api/v1/namespaces/{NS}/pods", data=body, headers=headers) as resp:
                await resp.read()
                now = time.perf_counter()
                if resp.status == 201:
                    tally.done.append(now)
                    tally.latencies.append(now - sent)
                elif resp.status == 429:
                    tally.refused += 1
                    tally.retry_after = max(tally.retry_after, int(resp.headers.get("Retry-After", "0")))
                else:
                    raise SystemExit(f"create answered {resp.status}: {await resp.text()}")

    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=count)) for count in flows.values()]
    try:
        await asyncio.gather(*(client(session, token)
                               for session, (token, count) in zip(sessions, flows.items(), strict=True)
                               for _ in range(count)))
    finally:
        for session in sessions:
            await session.close()
    return tallies, started


def settled(tally: Tally, started: float, seconds: float) -> tuple[int, float]:
    """Creates completed between the end of the warm-up and the end of the load, and their rate."""
    count = sum(1 for at in tally.done if started + WARMUP <= at < started + seconds)
    return count, count / (seconds - WARMUP)


def run_case(*, rate: float, flows: dict[str, int], seconds: float, extra: tuple[str, ...] = ()) -> dict[str, float]:
    with kubesim_process("--kubelet-paused", "--latency", "create=0.025", "--limit-rate", f"{rate:g}", *extra) as (url, pid):
        cpu, own = cpu_seconds(pid), time.process_time()
        tallies, started = asyncio.run(hammer(url, flows=flows, seconds=seconds))
        elapsed = time.perf_counter() - started
        cpu, own = (cpu_seconds(pid) - cpu) / elapsed, (time.process_time() - own) / elapsed
    total = Tally()
    for tally in tallies.values():
        total.done += tally.done
        total.latencies += tally.latencies
        total.refused += tally.refused
        total.retry_after = max(total.retry_after, tally.retry_after)
    count, completed = settled(total, started, seconds)
    latencies = sorted(total.latencies)
    result = {
        "rate": completed,
        "of_limit": completed / rate,
        "refused": total.refused / max(1, total.refused + len(total.done)),
        "p50": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "retry_after": total.retry_after,
        "cpu": cpu,
        "client_cpu": own,
    }
    if len(flows) == 2:
        small = min(flows, key=flows.__getitem__)
        result["small_share"] = settled(tallies[small], started, seconds)[0] / max(1, count)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--rates", default="100,400", help="the limits to try, creates/s")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[1]})
    rates = [float(r) for r in args.rates.split(",")]
    n = args.connections
    cases = {}
    for rate in rates:
        cases[f"rate {rate:g}"] = dict(rate=rate, flows={"bench": n})
        cases[f"rate {rate:g}, short queues"] = dict(rate=rate, flows={"bench": n}, extra=("--limit-queue-length", "2"))
    cases[f"fair, rate {rates[0]:g}"] = dict(rate=rates[0], flows={"big": n * 3 // 4, "small": n // 4})
    results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for run in range(args.runs):
        for name, case in cases.items():
            result = run_case(seconds=args.seconds, **case)  # type: ignore[arg-type]
            results[name].append(result)
            share = f", smaller flow's share {result['small_share']:.0%}" if "small_share" in result else ""
            print(f"run {run + 1} {name}: {result['rate']:.1f} creates/s ({result['of_limit']:.1%} of the limit), "
                  f"429 {result['refused']:.1%}, latency p50 {result['p50'] * 1000:.0f} ms p99 {result['p99'] * 1000:.0f} ms, "
                  f"Retry-After up to {result['retry_after']:.0f} s, kubesim CPU {result['cpu']:.0%}, clients' CPU {result['client_cpu']:.0%}{share}", flush=True)
    print(f"median of {args.runs} ({args.connections} connections, {args.seconds:g} s each, after {WARMUP:g} s):")
    for name, runs in results.items():
        def med(key: str) -> float:
            return statistics.median(r[key] for r in runs)

        spread = ", ".join(f"{r['of_limit']:.1%}" for r in runs)
        share = f"; smaller flow's share {med('small_share'):.0%} (fair: 50 %, first come first served: 25 %)" if "small_share" in runs[0] else ""
        print(f"  {name}: {med('of_limit'):.1%} of the limit ({spread}), 429 {med('refused'):.1%}, "
              f"p50 {med('p50') * 1000:.0f} ms, p99 {med('p99') * 1000:.0f} ms, kubesim CPU {med('cpu'):.0%}{share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
