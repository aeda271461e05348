"""How podq's cost grows with the work: a backlog, retained finished jobs, schedulers, live pods.

    .venv/bin/python -m bench.scale [--quick] [--parts backlog retained schedulers pods] [--plots DIR]

Each part runs at growing sizes on a fresh embedded Valkey (and, for pods, a kubesim in its own
process) and prints a table, each figure with its target (``target:`` lines, as ``bench.run``
gathers them), and a PNG plot per part in ``--plots`` (default docs/scaling/, which docs/scaling.md
shows). Memory is Redis's ``used_memory`` difference over the part's jobs, divided by them, and the
``MEMORY USAGE`` of a sample of ledger hashes.

* ``backlog``: N Airflow-shaped jobs (a ~900-byte workload JSON in the command) submitted to
  ``podq:jobs`` (submit rate, Redis bytes per queued job), admitted by intake's own step in this
  process (intake's rate while the stream is deep, Redis bytes per admitted job waiting for a worker),
  then, with all N waiting: ``podq status``'s reading (the overview and totals, in process) and
  ``podq job status`` answer times (medians of repeated calls). Workers draining the deep queue are
  not run here (their cost per job is a list pop and one ledger hash, neither depends on depth).
* ``retained``: N jobs driven through the ledger's real scripts to their terminal result, their
  results read, acknowledged and trimmed; Redis bytes per finished job, then the figure for 10 million
  extrapolated linearly from the measured sizes (said so in the table).
* ``schedulers``: S schedulers each with a results stream (a few entries read and acknowledged, some
  not); the trim pass over every stream, ``podq status``'s reading, and intake's cost per job spread
  over the S schedulers, against one scheduler.
* ``pods``: P running pods in one watcher scope in kubesim: the watcher's relist after a 410 and a
  cold one (bench.relist's child process: its peak RSS is the watcher's alone), and kubesim's RSS.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from bench.common import machine, target

SIZES = {
    "backlog": ([10_000, 100_000, 1_000_000], [2_000, 10_000]),
    "retained": ([10_000, 100_000, 300_000], [2_000, 10_000]),
    "schedulers": ([10, 100, 1_000], [10, 100, 300]),
    "pods": ([10_000, 30_000, 100_000], [1_000, 3_000]),
}
WORKLOAD = '{"token": "%s", "ti": {"id": "%s", "task_id": "transform", "dag_id": "example", "run_id": "%s", ' \
           '"try_number": 1, "map_index": %d, "pool_slots": 1, "queue": "default", "priority_weight": 1}, ' \
           '"dag_rel_path": "dags/example.py", "bundle_info": {"name": "dags-folder", "version": null}, ' \
           '"log_path": "dag_id=example/run_id=%s/task_id=transform/map_index=%d/attempt=1.log", "kind": "ExecuteTask"}'
UID = "0b4f3c1e-6a1d-4c55-9d3e-%012d"


def airflow_job(n: int, *, scheduler_id: str = "airflow", run: str = "scheduled__2026-12-05T00:00:00+00:00"):
    """A job as the Airflow executor sends it: the real command with a workload JSON of ~900 bytes."""
    from podq.shared.records import KubernetesJob, TaskKey
    key = TaskKey(dag_id="example", task_id="transform", run_id=run, map_index=n)
    workload = WORKLOAD % ("x" * 420, f"0193a1b2-{n:08d}", run, n, run, n)
    return KubernetesJob.new(scheduler_id=scheduler_id, key=key,
                             command=("python", "-m", "airflow.sdk.execution_time.execute_workload",
                                      "--json-string", workload))


def used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


def timed(call, repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return runs


def ms(runs: list[float]) -> str:
    return f"{statistics.median(runs) * 1000:,.1f} ms ({min(runs) * 1000:,.1f}–{max(runs) * 1000:,.1f})"


def _status(client):
    """What `podq status --once` reads from Redis (its Celery ping aside)."""
    from podq.status import read
    return read(client, ping=lambda: [])


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(flush=True)


def plot(path: Path, title: str, xlabel: str, series: dict[str, tuple[list[float], list[float]]], *,
         ylabel: str, targets: dict[str, float] | None = None, logx: bool = True) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(6.4, 3.8))
    for name, (xs, ys) in series.items():
        axes.plot(xs, ys, marker="o", label=name)
    for name, value in (targets or {}).items():
        axes.axhline(value, linestyle="--", color="grey", linewidth=1)
        axes.annotate(name, (axes.get_xlim()[0], value), fontsize=8, color="grey", va="bottom")
    if logx:
        axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    print(f"plot: {path}", flush=True)


# -- backlog --------------------------------------------------------------------------------------
def backlog(sizes: list[int], plots: Path) -> None:
    from podq.broker.client.jobs import job_status
    from podq.broker.client.submit import submit_many
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.intake.service import Intake
    from podq.broker.store import keys
    from podq.broker.store.connection import connect
    from podq.broker.store.trim import Trimmer
    from podq.broker.store.waiting import waiting_by_scheduler
    from podq.shared.settings import IntakeSettings, load_settings

    rows, figures = [], []
    for size in sizes:
        with EmbeddedRedis() as server:
            client = connect(server.url)
            settings = load_settings({}, intake=IntakeSettings(block_ms=10))
            intake = Intake(client=client, settings=settings, consumer="bench")
            intake.prepare()
            base = used_memory(client)
            started = time.perf_counter()
            for first in range(0, size, 1000):
                submit_many(client, [airflow_job(n) for n in range(first, min(size, first + 1000))])
            submit_seconds = time.perf_counter() - started
            queued = (used_memory(client) - base) / size
            started = time.perf_counter()
            admitted, tenth, chunk_started, chunks = 0, max(1, size // 10), started, []
            while admitted < size:
                admitted += intake.step(block_ms=10)
                if admitted >= (len(chunks) + 1) * tenth:
                    now = time.perf_counter()
                    chunks.append(tenth / (now - chunk_started))
                    chunk_started = now
                if time.perf_counter() - started > 3600:
                    raise RuntimeError(f"intake admitted {admitted} of {size} in an hour")
            intake_seconds = time.perf_counter() - started
            Trimmer(client).trim_all()
            waiting = (used_memory(client) - base) / size
            status = timed(lambda: _status(client), 5)
            picks = [airflow_job(random.randrange(size)).job_id for _ in range(50)]
            job = timed(lambda: job_status(client, picks.pop()), 50)
            lines = sum(waiting_by_scheduler(client, settings.kube.cluster).values())
            where = f"{client.llen(keys.CELERY_QUEUE):,} Celery messages, {lines:,} jobs in waiting lines"
            figures.append(dict(size=size, submit=size / submit_seconds, intake=size / intake_seconds,
                                first_tenth=chunks[0], last_tenth=chunks[-1],
                                queued=queued, waiting=waiting, status=statistics.median(status),
                                job=statistics.median(job)))
            rows.append([f"{size:,}", f"{size / submit_seconds:,.0f}", f"{queued:,.0f}",
                         f"{size / intake_seconds:,.0f} (first tenth {chunks[0]:,.0f}, last {chunks[-1]:,.0f})",
                         f"{waiting:,.0f}", where,
                         f"{waiting * 1_000_000 / 1e9:,.2f} GB", ms(status), ms(job)])
            client.close()
    table(f"Backlog: jobs waiting ({machine()})",
          ["jobs", "submit jobs/s", "bytes/job in podq:jobs", "intake jobs/s (the whole backlog)", "bytes/job admitted, waiting",
           "held as", "1M jobs at this rate", "podq status reading, median (min–max of 5)",
           "podq job status, median (min–max of 50)"], rows)
    last = figures[-1]
    target(f"Redis for a 1,000,000-job backlog (from {last['size']:,} measured, linear)",
           last["waiting"] * 1_000_000 / 1e9, goal=3.0, unit="GB", higher_is_better=False)
    target(f"intake's rate at {last['size']:,} deep against {figures[0]['size']:,} (ratio)",
           last["intake"] / figures[0]["intake"], goal=0.9, unit="×")
    target(f"intake's rate over the last tenth of {last['size']:,} against the first (same run, ratio)",
           last["last_tenth"] / last["first_tenth"], goal=0.9, unit="×")
    target(f"podq status reading with {last['size']:,} waiting", last["status"], goal=1.0, unit="s",
           higher_is_better=False)
    target(f"podq job status with {last['size']:,} waiting", last["job"] * 1000, goal=50, unit="ms",
           higher_is_better=False)
    xs = [f["size"] for f in figures]
    plot(plots / "backlog-memory.png", "Redis bytes per waiting job", "jobs waiting",
         {"queued in podq:jobs": (xs, [f["queued"] for f in figures]),
          "admitted, waiting for a worker": (xs, [f["waiting"] for f in figures])}, ylabel="bytes per job",
         targets={"3 GB / 1M jobs": 3000})
    plot(plots / "backlog-rates.png", "Rates while the backlog is deep", "jobs waiting",
         {"submit (jobs/s)": (xs, [f["submit"] for f in figures]),
          "intake (jobs/s)": (xs, [f["intake"] for f in figures])}, ylabel="jobs per second")
    plot(plots / "backlog-answers.png", "Answer times with the backlog waiting", "jobs waiting",
         {"podq status reading (ms)": (xs, [f["status"] * 1000 for f in figures]),
          "podq job status (ms)": (xs, [f["job"] * 1000 for f in figures])}, ylabel="milliseconds",
         targets={"job status 50 ms": 50})


# -- retained -------------------------------------------------------------------------------------
def drive_to_the_end(client, jobs, *, ledger, publisher) -> None:
    from podq.broker.store.ledger import Lease
    from podq.broker.store.publish import Item
    from podq.shared.naming import pod_name_for
    from podq.shared.records import KubernetesWatch
    from podq.shared.states import Source, State
    ledger.accept_many([(job, pod_name_for(job.job_id, job.key)) for job in jobs])
    ledger.mark_dispatched([job.job_id for job in jobs])
    ledger.claim_jobs([job.job_id for job in jobs], Lease(token="bench", seconds=30, grace=5))   # one delivery each
    ledger.mark_created_many([(job.job_id, UID % n) for n, job in enumerate(jobs)])
    publisher.publish_items([Item(result=KubernetesWatch.build(
        job_id=job.job_id, scheduler_id=job.scheduler_id, key=job.key, source=Source.WATCHER,
        state=State.SUCCEEDED, pod_name=pod_name_for(job.job_id, job.key)), pod_uid=UID % n)
        for n, job in enumerate(jobs)])


def retained(sizes: list[int], plots: Path) -> None:
    from podq.broker.client.results import ResultsConsumer
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.store import keys
    from podq.broker.store.connection import connect
    from podq.broker.store.ledger import Ledger
    from podq.broker.store.publish import Publisher
    from podq.broker.store.trim import Trimmer

    rows, figures = [], []
    for size in sizes:
        with EmbeddedRedis() as server:
            client = connect(server.url)
            ledger, publisher = Ledger(client), Publisher(client)
            # A sample's in-flight size (created, before its end), for the comparison.
            sample = [airflow_job(n, run="sample") for n in range(100)]
            ledger.accept_many([(job, "p") for job in sample])
            ledger.mark_created_many([(job.job_id, UID % n) for n, job in enumerate(sample)])
            in_flight = statistics.median(client.memory_usage(keys.job_key(job.job_id), samples=0) for job in sample)
            client.delete(*(keys.job_key(job.job_id) for job in sample))
            base = used_memory(client)
            for first in range(0, size, 500):
                drive_to_the_end(client, [airflow_job(n) for n in range(first, min(size, first + 500))],
                                 ledger=ledger, publisher=publisher)
            published = (used_memory(client) - base) / size
            consumer = ResultsConsumer(client, scheduler_id="airflow", consumer="bench", batch_size=1000)
            read = 0
            while read < size:
                results = consumer.read(count=1000, block_ms=10)
                if not results:
                    break
                consumer.ack(results)
                read += len(results)
            Trimmer(client).trim_all()
            finished = (used_memory(client) - base) / size
            hashes = [client.memory_usage(keys.job_key(airflow_job(random.randrange(size)).job_id), samples=0)
                      for _ in range(100)]
            figures.append(dict(size=size, published=published, finished=finished, hash=statistics.median(hashes),
                                in_flight=in_flight))
            rows.append([f"{size:,}", f"{in_flight:,.0f}", f"{published:,.0f}", f"{finished:,.0f}",
                         f"{statistics.median(hashes):,.0f} ({min(hashes)}–{max(hashes)})", f"{read:,}"])
            client.close()
    last = figures[-1]
    per_job = last["finished"]
    rows.append(["10,000,000 (extrapolated, not run)", "-", "-", f"{per_job:,.0f}", "-",
                 f"{per_job * 10_000_000 / 1e9:,.1f} GB"])
    rows.append(["70,000,000 (10M/day × 7 days, extrapolated)", "-", "-", f"{per_job:,.0f}", "-",
                 f"{per_job * 70_000_000 / 1e9:,.1f} GB"])
    table(f"Retained finished jobs ({machine()})",
          ["jobs", "ledger hash in flight (MEMORY USAGE, median of 100)", "bytes/job, results unread",
           "bytes/job, read, acked, trimmed", "finished ledger hash (MEMORY USAGE, median (min–max) of 100)",
           "results read / Redis for all"], rows)
    target("Redis per finished, acknowledged job (used_memory over the largest size)", per_job, goal=300,
           unit="bytes", higher_is_better=False)
    target("a finished job's ledger hash (MEMORY USAGE, median)", last["hash"], goal=300, unit="bytes",
           higher_is_better=False)
    xs = [f["size"] for f in figures]
    plot(plots / "retained-memory.png", "Redis bytes per finished job", "finished jobs retained",
         {"results unread": (xs, [f["published"] for f in figures]),
          "read, acknowledged, trimmed": (xs, [f["finished"] for f in figures]),
          "ledger hash while in flight": (xs, [f["in_flight"] for f in figures])}, ylabel="bytes per job",
         targets={"target 300": 300})


# -- schedulers -----------------------------------------------------------------------------------
def schedulers(sizes: list[int], plots: Path) -> None:
    from podq.broker.client.submit import submit_many
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.intake.service import Intake
    from podq.broker.store import keys, streams
    from podq.broker.store.connection import connect
    from podq.broker.store.trim import Trimmer
    from podq.shared.settings import IntakeSettings, load_settings

    jobs = 2_000

    def intake_costs(client, count: int) -> tuple[float, float]:
        """Intake's seconds per job for ``jobs`` jobs from one scheduler and spread over ``count``,
        side by side (alternate rounds, one intake each): the medians of three rounds after a first
        one (which makes each scheduler's results stream, once per intake process)."""
        settings = load_settings({}, intake=IntakeSettings(block_ms=10))
        intakes = {spread: Intake(client=client, settings=settings, consumer=f"bench-{spread}")
                   for spread in (1, count)}
        rounds: dict[int, list[float]] = {1: [], count: []}
        for round_ in range(4):
            for spread, intake in intakes.items():
                intake.prepare()
                submit_many(client, [airflow_job(n, scheduler_id=f"s{n % spread}", run=f"cost-{spread}-{round_}")
                                     for n in range(jobs)])
                started = time.perf_counter()
                admitted = 0
                while admitted < jobs:
                    admitted += intake.step(block_ms=10)
                rounds[spread].append((time.perf_counter() - started) / jobs)
        return statistics.median(rounds[1][1:]), statistics.median(rounds[count][1:])

    rows, figures = [], []
    for size in sizes:
        with EmbeddedRedis() as server:
            client = connect(server.url)
            pipe = client.pipeline(transaction=False)
            for s in range(size):
                streams.ensure_results_group(client, f"s{s}")
                for n in range(5):
                    pipe.xadd(keys.results_stream(f"s{s}"), {keys.RECORD_FIELD: b"x" * 300})
            pipe.execute()
            for s in range(0, size, 2):      # half the schedulers read and acknowledged theirs
                stream = keys.results_stream(f"s{s}")
                read = client.xreadgroup(keys.RESULTS_GROUP, "c", {stream: ">"}, count=5)
                client.xack(stream, keys.RESULTS_GROUP, *(entry for entry, _ in read[0][1]))
            trim = timed(lambda: Trimmer(client).trim_all(), 3)
            status = timed(lambda: _status(client), 3)
            one, cost = intake_costs(client, size)
            figures.append(dict(size=size, trim=statistics.median(trim), status=statistics.median(status),
                                cost=cost, one=one))
            rows.append([f"{size:,}", ms(trim), ms(status), f"{cost * 1e6:,.0f} µs ({cost / one:.2f}× one)"])
            client.close()
    table(f"Schedulers: one results stream each ({machine()})",
          ["schedulers", "trim pass, median (min–max of 3)", "podq status reading, median (min–max of 3)",
           f"intake per job, {jobs:,} jobs over them (median of 3 rounds)"], rows)
    last = figures[-1]
    target(f"trim pass over {last['size']:,} schedulers' streams", last["trim"], goal=1.0, unit="s",
           higher_is_better=False)
    target(f"intake's per-job cost with {last['size']:,} schedulers against one (ratio)", last["cost"] / last["one"],
           goal=1.1, unit="×", higher_is_better=False)
    target(f"podq status reading with {last['size']:,} schedulers", last["status"], goal=1.0, unit="s",
           higher_is_better=False)
    xs = [f["size"] for f in figures]
    plot(plots / "schedulers.png", "Cost as schedulers grow", "schedulers (results streams)",
         {"trim pass (ms)": (xs, [f["trim"] * 1000 for f in figures]),
          "podq status reading (ms)": (xs, [f["status"] * 1000 for f in figures]),
          "intake per job (µs)": (xs, [f["cost"] * 1e6 for f in figures])}, ylabel="ms (µs for intake)",
         targets={"1 s": 1000})


# -- pods -----------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pods(sizes: list[int], plots: Path) -> None:
    from bench.common import kubesim_process
    from bench.relist import create_pods, measure
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.store.connection import connect

    rows, figures = [], []
    with EmbeddedRedis() as server, kubesim_process("--default-run-seconds", "36000", "--history-size",
                                                    str(max(sizes) * 4)) as (_, kubeconfig, admin, pid):
        client = connect(server.url)
        made = 0
        for size in sizes:
            started = time.monotonic()
            create_pods(kubeconfig, size - made, first=made)
            while admin.stats()["pods"] < size:
                time.sleep(0.5)
            made = size
            create_rate = size / (time.monotonic() - started)
            time.sleep(3.0)               # the kubelet brings the last pods to Running
            client.flushall()
            cold = measure(server.url, kubeconfig, 500)
            warm = measure(server.url, kubeconfig, 500)
            figures.append(dict(size=size, cold=cold["seconds"], warm=warm["seconds"],
                                rss=max(cold["rss_mb"], warm["rss_mb"]), kubesim=rss_mb(pid),
                                redis=used_memory(client)))
            rows.append([f"{size:,}", f"{cold['seconds']:.1f} s", f"{warm['seconds']:.1f} s", f"{warm['load']:.2f} s",
                         f"{figures[-1]['rss']:,.0f} MB", f"{figures[-1]['kubesim']:,.0f} MB",
                         f"{figures[-1]['redis'] / size:,.0f}", f"{create_rate:,.0f}"])
        client.close()
    table(f"Live pods in one watcher scope ({machine()})",
          ["pods", "relist, cold", "relist after a 410", "load stored states", "watcher peak RSS",
           "kubesim RSS", "Redis bytes per pod (stored states, results published)", "pods created/s (this part's setup)"], rows)
    last = figures[-1]
    target(f"relist of {last['size']:,} pods after a 410", last["warm"], goal=10.0, unit="s", higher_is_better=False)
    target(f"watcher RSS with {last['size']:,} pods", last["rss"], goal=1024, unit="MB", higher_is_better=False)
    xs = [f["size"] for f in figures]
    plot(plots / "pods-relist.png", "Relist time in one watcher scope", "live pods",
         {"relist after a 410 (s)": (xs, [f["warm"] for f in figures]),
          "relist, cold (s)": (xs, [f["cold"] for f in figures])}, ylabel="seconds", targets={"10 s": 10})
    plot(plots / "pods-memory.png", "Memory with live pods", "live pods",
         {"watcher peak RSS (MB)": (xs, [f["rss"] for f in figures]),
          "kubesim RSS (MB)": (xs, [f["kubesim"] for f in figures])}, ylabel="MB", targets={"1 GB": 1024})


PARTS = {"backlog": backlog, "retained": retained, "schedulers": schedulers, "pods": pods}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI's pass: a few minutes)")
    parser.add_argument("--parts", nargs="*", choices=sorted(PARTS), default=list(PARTS))
    parser.add_argument("--plots", default="docs/scaling", help="where the PNG plots go")
    for part in PARTS:
        parser.add_argument(f"--{part}", type=int, nargs="+", metavar="N", help=f"sizes for {part}")
    args = parser.parse_args(argv)
    print(f"# bench.scale ({'quick' if args.quick else 'full'}): {machine()}; shared machine: figures are noisy")
    for part in args.parts:
        full, quick = SIZES[part]
        sizes = getattr(args, part) or (quick if args.quick else full)
        started = time.monotonic()
        print(f"\n== {part}: sizes {', '.join(f'{size:,}' for size in sizes)}", flush=True)
        PARTS[part](sorted(sizes), Path(args.plots))
        print(f"({part}: {time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
