"""How podq's cost grows with the work: a backlog, retained finished jobs, schedulers, live pods.

    .venv/bin/python -m bench.scale [--quick] [--parts backlog retained drain schedulers pods] [--plots DIR]

Each part runs at growing sizes on a fresh embedded Valkey (and, for pods, a kubesim in its own
process) and prints a table, each figure with its target (``target:`` lines, as ``bench.run``
gathers them), and a PNG plot per part in ``--plots`` (default docs/scaling/, which docs/scaling.md
shows). Memory is Redis's ``used_memory`` difference over the part's jobs, divided by them, and the
``MEMORY USAGE`` of a sample of ledger hashes.

* ``backlog``: N Airflow-shaped jobs (a ~900-byte workload JSON in the command) submitted to
  ``podq:jobs`` (submit rate, Redis bytes per queued job), admitted by intake's own step in this
  process (intake's rate while the stream is deep, Redis bytes per admitted job waiting for a worker),
  then, with all N waiting: ``podq status``'s reading (the overview and totals, in process) and
  ``podq job status`` answer times (medians of repeated calls). Workers draining a deep queue are
  the drain part.
* ``retained``: N jobs driven through the ledger's real scripts to their terminal result, their
  results read, acknowledged and trimmed; Redis bytes per finished job. Above ``--simulate-above``
  jobs (100,000; 10,000 with ``--quick``) the jobs are simulated: 1,000 go through the real scripts and
  the rest are copies of one of their compacted hashes, written server-side (a ledger of 10 million
  jobs in a minute or two, not hours); ``podq job status`` of a real one is timed among them.
* ``drain``: N jobs submitted at once to a whole stack (intake, 2 workers, the watcher; kubesim with
  25 ms creates and its kubelet paused), drained by the workers after a first, unmeasured drain of the smallest size
  (the create budget's slow start): pods created per second from when intake has admitted them all (and
  a tenth are created) to 95 % created, against the smallest size's (the shallow queue), the jobs
  waiting in Redis when that window starts, and ``podq status``'s reading and ``podq job status`` sampled every second throughout.
  kubesim keeps every pod it is given (pending), so the deep size is bounded by its memory, not podq's.
* ``schedulers``: S schedulers each with a results stream (a few entries read and acknowledged, some
  not); the trim pass over every stream, ``podq status``'s reading, and intake's cost per job spread
  over the S schedulers, against one scheduler.
* ``pods``: P running pods in one watcher scope in kubesim (its default, bounded watch history, as an
  API server's watch cache): the watcher's relist after a 410 and a cold one (bench.relist's child
  process: its peak RSS is the watcher's alone), kubesim's RSS, and the watcher's event rate with the P
  pods' states loaded in its tracker (the watch lines of 2,000 other pods' whole lives replayed through
  its processing path, bench.watcher_events), against the smallest size's.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
from pathlib import Path

from bench.common import machine, target

SIZES = {
    "backlog": ([10_000, 100_000, 1_000_000], [2_000, 10_000]),
    "retained": ([10_000, 100_000, 1_000_000, 10_000_000], [2_000, 10_000, 100_000]),
    "schedulers": ([10, 100, 1_000], [10, 100, 300]),
    "drain": ([2_000, 20_000, 100_000], [500, 2_000]),
    "pods": ([1_000, 10_000, 30_000, 100_000], [1_000, 3_000]),
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
    if logx:
        axes.set_xscale("log")
    for name, (xs, ys) in series.items():
        axes.plot(xs, ys, marker="o", label=name)
    for name, value in (targets or {}).items():
        axes.axhline(value, linestyle="--", color="grey", linewidth=1, label=f"target: {name}")
    axes.set_ylim(0, axes.get_ylim()[1] * 1.08)     # read against zero, not against the figures' own range
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
    from podq.broker.store import counters, keys
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
                # admitted: counted by the ledger (intake also reads entries ahead of what it admits)
                intake.step(block_ms=10)
                admitted = counters.totals(client).get(counters.ACCEPTED, 0)
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
    how = "measured" if last["size"] == 1_000_000 else f"from {last['size']:,} measured, linear"
    target(f"Redis for a 1,000,000-job backlog ({how})",
           last["waiting"] * 1_000_000 / 1e9, goal=3.0, unit="GB", higher_is_better=False)
    # Intake's rate is a figure, not a target (the workers' rate while a backlog drains is: the drain part):
    # it admits thousands of jobs a second where an API server creates hundreds (docs/scaling.md).
    print(f"figure: intake's rate at {last['size']:,} deep against {figures[0]['size']:,}: "
          f"{last['intake'] / figures[0]['intake']:.2f} ×; its last tenth of {last['size']:,} against the first: "
          f"{last['last_tenth'] / last['first_tenth']:.2f} ×", flush=True)
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


SIMULATE = """
local prefix, first, count, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
for n = first, first + count - 1 do
  local key = prefix .. string.format('%032x', n)
  redis.call('HSET', key, unpack(fields))
  redis.call('EXPIRE', key, ttl)
end
return count
"""
"""Copies of one finished job's compacted hash under ``count`` job keys of their own (the simulated sizes)."""
SIMULATE_ABOVE = {False: 100_000, True: 10_000}


def simulated_retained(size: int) -> dict:
    """Redis per finished job with ``size`` retained, 1,000 of them real (driven through the scripts), the
    rest copies of a real one's compacted hash; and ``podq job status`` of real ones among them."""
    from podq.broker.client.jobs import job_status
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.store import keys
    from podq.broker.store.connection import connect
    from podq.broker.store.ledger import Ledger
    from podq.broker.store.publish import Publisher
    from podq.broker.store.trim import Trimmer

    with EmbeddedRedis() as server:
        client = connect(server.url)
        client.config_set("appendonly", "no")   # millions of copies: no AOF writes and rewrites to wait for
        base = used_memory(client)
        real = [airflow_job(n) for n in range(1000)]
        for first in range(0, len(real), 500):
            drive_to_the_end(client, real[first:first + 500], ledger=Ledger(client), publisher=Publisher(client))
        client.delete(keys.results_stream("airflow"))       # as if read, acknowledged and trimmed
        Trimmer(client).trim_all()
        template = client.hgetall(keys.job_key(real[0].job_id))
        ttl = client.ttl(keys.job_key(real[0].job_id))
        simulate = client.register_script(SIMULATE)
        fields = [part for pair in template.items() for part in pair]
        for first in range(0, size - len(real), 10_000):
            simulate(args=[keys.job_key(""), first, min(10_000, size - len(real) - first), ttl, *fields])
        per_job = (used_memory(client) - base) / size
        hashes = [client.memory_usage(keys.job_key(f"{random.randrange(size - len(real)):032x}"), samples=0)
                  for _ in range(100)]
        picks = [random.choice(real).job_id for _ in range(50)]
        answers = timed(lambda: job_status(client, picks.pop()), 50)
        client.close()
    return dict(size=size, finished=per_job, hash=statistics.median(hashes), hashes=hashes, job=answers)


def retained(sizes: list[int], plots: Path, *, simulate_above: int = SIMULATE_ABOVE[False]) -> None:
    from podq.broker.client.results import ResultsConsumer
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.store import keys
    from podq.broker.store.connection import connect
    from podq.broker.store.ledger import Ledger
    from podq.broker.store.publish import Publisher
    from podq.broker.store.trim import Trimmer

    rows, figures, simulated = [], [], []
    for size in sizes:
        if size > simulate_above:
            simulated.append(simulated_retained(size))
            last = simulated[-1]
            rows.append([f"{size:,} (simulated: 1,000 real, the rest copies)", "-", "-", f"{last['finished']:,.0f}",
                         f"{last['hash']:,.0f} ({min(last['hashes'])}–{max(last['hashes'])})",
                         f"{last['finished'] * size / 1e9:,.2f} GB; job status {ms(last['job'])}"])
            print(f"  {rows[-1]}", flush=True)
            continue
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
    last = (figures + simulated)[-1]
    per_job = last["finished"]
    rows.append([f"70,000,000 (10M/day × 7 days, {last['size']:,}'s figure multiplied out)", "-", "-",
                 f"{per_job:,.0f}", "-", f"{per_job * 70_000_000 / 1e9:,.1f} GB"])
    table(f"Retained finished jobs ({machine()})",
          ["jobs", "ledger hash in flight (MEMORY USAGE, median of 100)", "bytes/job, results unread",
           "bytes/job, read, acked, trimmed", "finished ledger hash (MEMORY USAGE, median (min–max) of 100)",
           "results read / Redis for all"], rows)
    target(f"Redis per finished, acknowledged job (used_memory over {last['size']:,})", per_job, goal=300,
           unit="bytes", higher_is_better=False)
    target(f"10M jobs a day for 7 days at that figure", per_job * 70_000_000 / 1e9, goal=21, unit="GB",
           higher_is_better=False)
    if simulated:
        target(f"podq job status among {last['size']:,} retained, median", statistics.median(last["job"]) * 1000,
               goal=50, unit="ms", higher_is_better=False)
    target("a finished job's ledger hash (MEMORY USAGE, median)", last["hash"], goal=300, unit="bytes",
           higher_is_better=False)
    xs = [f["size"] for f in figures]
    everything = figures + simulated
    plot(plots / "retained-memory.png", "Redis bytes per finished job", "finished jobs retained",
         {"results unread": (xs, [f["published"] for f in figures]),
          "read, acknowledged, trimmed (simulated above "
          f"{simulate_above:,})": ([f["size"] for f in everything], [f["finished"] for f in everything]),
          "ledger hash while in flight": (xs, [f["in_flight"] for f in figures])}, ylabel="bytes per job",
         targets={"target 300": 300})


# -- drain ----------------------------------------------------------------------------------------
def sample_answers(redis_url: str, job_ids: list[str], done, out) -> None:  # type: ignore[no-untyped-def]
    """Once a second until ``done``: how long `podq status`'s reading and `podq job status` of a random job take."""
    from podq.broker.client.jobs import job_status
    from podq.broker.store.connection import connect

    client = connect(redis_url)
    client.ping()   # the connection made before the first sample, as a command's is before it reads
    answers: dict[str, list[float]] = {"status": [], "job": []}
    while not done.wait(1.0):
        answers["status"].append(timed(lambda: _status(client), 1)[0])
        answers["job"].append(timed(lambda: job_status(client, random.choice(job_ids)), 1)[0])
    client.close()
    out.send(answers)


DRAIN_CEILING = 20_000
"""creates/s: the drain part's budget ceiling"""
SHALLOW_RUNS = 3
"""drains of the smallest size, the reference, before the other sizes and as many after"""


def drain(sizes: list[int], plots: Path) -> None:
    from bench.common import kubesim_process, wait_until_watching
    from podq.broker.client.submit import submit_many
    from podq.broker.store import counters
    from podq.broker.store.connection import connect
    from podq.shared.settings import KubeSettings, load_settings
    from podq.stack import Stack, StackOptions

    rows, figures = [], []
    with kubesim_process("--kubelet-paused", "--latency", "create=0.025") as (_, kubeconfig, admin, _pid):
        # The create budget's ceiling (1,000/s by default) lifted far above what this machine makes, so the
        # rate is what the workers reach, not the ceiling: the budget still adapts below it.
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        with Stack(settings, StackOptions(workers=2, extra_env={"PODQ_WORKER_CREATE_RATE": str(DRAIN_CEILING)})) as stack:
            wait_until_watching(admin)
            client = connect(stack.redis_url)
            # A first drain, not measured: the create budget's slow start finds its rate (it keeps it in
            # Redis), so the sizes compare the workers' steady rate, not how far each got out of slow start.
            warm = [airflow_job(n, run="drain-warm-up") for n in range(sizes[0])]
            before = admin.stats()["pods"]
            submit_many(client, warm)
            while admin.stats()["pods"] - before < len(warm):
                time.sleep(0.25)
            def drain_once(size: int, run: str) -> dict:
                jobs = [airflow_job(n, run=run) for n in range(size)]
                # Pods, not create requests: a redelivered create answered 409 is a request, not a pod (the
                # kubelet is paused, so every pod stays).
                before = admin.stats()["pods"]
                accepted_before = counters.totals(client).get(counters.ACCEPTED, 0)
                samples: list[tuple[float, int, bool]] = []
                # Sampled from a process of its own, as an operator's command is: a thread here would wait
                # for this process's GIL while it encodes the submissions, and count that wait.
                spawn = multiprocessing.get_context("spawn")
                done, (answers_in, answers_out) = spawn.Event(), spawn.Pipe(duplex=False)
                sampler = spawn.Process(target=sample_answers, name="bench-drain-answers",
                                        args=(stack.redis_url, [job.job_id for job in jobs], done, answers_out))
                sampler.start()
                started = time.monotonic()
                for first in range(0, size, 1000):
                    submit_many(client, jobs[first:first + 1000])
                submitted = time.monotonic() - started
                deadline = time.monotonic() + 3600
                while (created := admin.stats()["pods"] - before) < size:
                    admitted = counters.totals(client).get(counters.ACCEPTED, 0) - accepted_before >= size
                    samples.append((time.monotonic(), created, admitted))
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"drain of {size:,}: only {created:,} pods created in an hour")
                    time.sleep(0.25)        # polling kubesim's counter: the bench's own clock
                samples.append((time.monotonic(), size, True))
                done.set()
                answers = answers_in.recv()
                sampler.join()
                # The drain proper: from when intake has admitted every job (they wait in Redis) and a tenth
                # are created, to 95 % created; intake's admission of the rest competes for the same cores.
                low = next(s for s in samples if s[2] and s[1] >= 0.1 * size)
                high = next(s for s in samples if s[1] >= 0.95 * size)
                if high[1] <= low[1]:           # admitted only near the end: the window is what is left
                    high = samples[-1]
                return dict(submit=size / submitted, rate=(high[1] - low[1]) / max(high[0] - low[0], 1e-9),
                            waiting=size - low[1], answers=answers)

            # The smallest size, the reference, drains in a second or two, so one window is mostly noise, and
            # this machine's speed drifts over minutes: it drains SHALLOW_RUNS times before the other sizes and
            # as often after them (against kubesim as full as the deepest drain left it), and the median of
            # them all counts.
            drained = {sizes[0]: [drain_once(sizes[0], f"drain-{sizes[0]}-{n}") for n in range(SHALLOW_RUNS)]}
            for size in sizes[1:]:
                drained[size] = [drain_once(size, f"drain-{size}")]
            drained[sizes[0]] += [drain_once(sizes[0], f"drain-{sizes[0]}-after-{n}") for n in range(SHALLOW_RUNS)]
            for size, runs in drained.items():
                rates = [run["rate"] for run in runs]
                answers = {what: [a for run in runs for a in run["answers"][what]] for what in ("status", "job")}
                rate = statistics.median(rates)
                figures.append(dict(size=size, rate=rate, status=max(answers["status"] or [0.0]),
                                    job=max(answers["job"] or [0.0]), waiting=runs[0]["waiting"]))
                rows.append([f"{size:,}", f"{statistics.median(run['submit'] for run in runs):,.0f}",
                             f"{rate:,.0f}" + (f" (median of {len(runs)}, half before and half after the others: "
                                               f"{min(rates):,.0f}–{max(rates):,.0f})" if len(runs) > 1 else ""),
                             f"{runs[0]['waiting']:,}", f"{rate / figures[0]['rate']:.2f}",
                             ms(answers["status"]) if answers["status"] else "-",
                             ms(answers["job"]) if answers["job"] else "-"])
                print(f"  {rows[-1]}", flush=True)
            client.close()
    table(f"Draining a backlog: the whole stack, 2 workers ({machine()})",
          ["jobs submitted at once", "submit jobs/s", "pods created/s, from all admitted (and 10 %) to 95 % created",
           "jobs admitted, waiting in Redis, when that window starts", "against the smallest size's",
           "podq status reading during the drain, median (min–max, once a second)",
           "podq job status during the drain, median (min–max)"], rows)
    first, last = figures[0], figures[-1]
    target(f"workers' create rate draining {last['size']:,} against {first['size']:,} (ratio)",
           last["rate"] / first["rate"], goal=0.9, unit="×")
    target(f"podq status reading during the drain of {last['size']:,}, worst", last["status"], goal=1.0, unit="s",
           higher_is_better=False)
    target(f"podq job status during the drain of {last['size']:,}, worst", last["job"] * 1000, goal=50, unit="ms",
           higher_is_better=False)
    xs = [f["size"] for f in figures]
    plot(plots / "drain.png", "Workers draining a backlog", "jobs submitted at once",
         {"pods created/s (all admitted → 95 % created)": (xs, [f["rate"] for f in figures])}, ylabel="pods per second",
         targets={"90 % of the shallow rate": 0.9 * first["rate"]})


# -- schedulers -----------------------------------------------------------------------------------
def schedulers(sizes: list[int], plots: Path) -> None:
    from podq.broker.client.submit import submit_many
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.intake.service import Intake
    from podq.broker.store import counters, keys, streams
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
                before = counters.totals(client).get(counters.ACCEPTED, 0)
                while counters.totals(client).get(counters.ACCEPTED, 0) - before < jobs:
                    intake.step(block_ms=10)    # it reads entries ahead of what it admits: the ledger counts
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


EVENT_PODS = 2_000
"""Pods whose whole life's watch lines are replayed at each size of the pods part (~7 lines a pod)."""


def record_events(pods: int) -> list[bytes]:
    """The watch lines of ``pods`` pods' whole lives, from a kubesim of their own (bench.watcher_events)."""
    from bench.common import kubesim_process
    from bench.watcher_events import record
    with kubesim_process("--default-run-seconds", "0.2",
                         *[f"--kubelet-{step}=0.01" for step in ("schedule", "start")]) as (_, kubeconfig, _a, _p):
        return record(kubeconfig, pods)


def replay_events(client, lines: list[bytes], *, runs: int) -> list[float]:
    """Events/s of the watcher's processing path (bench.watcher_events) with the scope's stored states
    loaded into its tracker (the live pods): each run replays ``lines`` and then removes what they left
    (their jobs' ledger hashes; the pods' states are gone with their deletion), so every run does the
    same work."""
    from bench.watcher_events import NoKube
    from podq.broker.store import keys
    from podq.shared import naming
    from podq.shared.records import TaskKey
    from podq.shared.settings import WatcherSettings
    from podq.watcher.health import Health
    from podq.watcher.publishing import Broker, Scope
    from podq.watcher.scope import ScopeRunner
    from podq.watcher.tracker import Tracker

    job_keys = [keys.job_key(naming.derive_job_id("bench", TaskKey(dag_id="bench", task_id=f"t{index}",
                                                                   run_id="events"))) for index in range(EVENT_PODS)]
    broker = Broker.open(client)
    rates = []
    for _ in range(runs):
        _, token = broker.store.hold("default", holder="bench-events", token=None, ttl=600)
        runner = ScopeRunner(scope=Scope.of("default"), token=token, broker=broker, kube=NoKube(),
                             settings=WatcherSettings(batch_size=500), health=Health("/dev/null", instance="bench"))
        runner.tracker = Tracker.from_stored(broker.store.states("default"))
        started = time.perf_counter()
        for first in range(0, len(lines), 500):
            runner._handle(lines[first:first + 500])
        rates.append(len(lines) / (time.perf_counter() - started))
        broker.store.release("default", token=token)
        client.delete(*job_keys)
    return rates


def pods(sizes: list[int], plots: Path) -> None:
    from bench.common import kubesim_process
    from bench.relist import create_pods, measure
    from podq.broker.embedded import EmbeddedRedis
    from podq.broker.store.connection import connect

    lines = record_events(EVENT_PODS)
    rows, figures = [], []
    # kubesim keeps its default, bounded watch history (20,000 events, as an API server's watch cache is
    # bounded: an older resourceVersion is answered 410 Gone), not one sized to the pods.
    with EmbeddedRedis() as server, kubesim_process("--default-run-seconds", "36000") as (_, kubeconfig, admin, pid):
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
            redis_bytes = used_memory(client)
            replay_events(client, lines, runs=1)        # warm-up: script loading, first-touch allocations
            events = replay_events(client, lines, runs=3)
            figures.append(dict(size=size, cold=cold["seconds"], warm=warm["seconds"],
                                rss=max(cold["rss_mb"], warm["rss_mb"]), kubesim=rss_mb(pid),
                                redis=redis_bytes, events=statistics.median(events)))
            rows.append([f"{size:,}", f"{cold['seconds']:.1f} s", f"{warm['seconds']:.1f} s", f"{warm['load']:.2f} s",
                         f"{figures[-1]['rss']:,.0f} MB", f"{figures[-1]['kubesim']:,.0f} MB",
                         f"{figures[-1]['redis'] / size:,.0f}",
                         f"{statistics.median(events):,.0f} ({min(events):,.0f}–{max(events):,.0f})",
                         f"{create_rate:,.0f}"])
            print(f"  {size:,} pods: {rows[-1]}", flush=True)
        client.close()
    table(f"Live pods in one watcher scope ({machine()})",
          ["pods", "relist, cold", "relist after a 410", "load stored states", "watcher peak RSS",
           "kubesim RSS", "Redis bytes per pod (stored states, results published)",
           f"watch events/s with them tracked, median (min–max of 3; {len(lines):,} lines of {EVENT_PODS:,} pods)",
           "pods created/s (this part's setup)"], rows)
    first, last = figures[0], figures[-1]
    target(f"relist of {last['size']:,} pods after a 410", last["warm"], goal=10.0, unit="s", higher_is_better=False)
    target(f"watcher RSS with {last['size']:,} pods", last["rss"], goal=1024, unit="MB", higher_is_better=False)
    target(f"watch events/s with {last['size']:,} pods against {first['size']:,} (ratio)",
           last["events"] / first["events"], goal=0.8, unit="×")
    xs = [f["size"] for f in figures]
    plot(plots / "pods-relist.png", "Relist time in one watcher scope", "live pods",
         {"relist after a 410 (s)": (xs, [f["warm"] for f in figures]),
          "relist, cold (s)": (xs, [f["cold"] for f in figures])}, ylabel="seconds", targets={"10 s": 10})
    plot(plots / "pods-memory.png", "Memory with live pods", "live pods",
         {"watcher peak RSS (MB)": (xs, [f["rss"] for f in figures]),
          "kubesim RSS (MB)": (xs, [f["kubesim"] for f in figures])}, ylabel="MB", targets={"1 GB": 1024})
    plot(plots / "pods-events.png", "Watch events/s with live pods tracked", "live pods",
         {"events/s": (xs, [f["events"] for f in figures])}, ylabel="events per second",
         targets={"80 % of the smallest size's": 0.8 * first["events"]})


PARTS = {"backlog": backlog, "retained": retained, "drain": drain, "schedulers": schedulers, "pods": pods}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI's pass: a few minutes)")
    parser.add_argument("--parts", nargs="*", choices=sorted(PARTS), default=list(PARTS))
    parser.add_argument("--plots", default="docs/scaling", help="where the PNG plots go")
    for part in PARTS:
        parser.add_argument(f"--{part}", type=int, nargs="+", metavar="N", help=f"sizes for {part}")
    parser.add_argument("--simulate-above", type=int, metavar="N",
                        help="retained: simulate sizes above N (default 100,000; 10,000 with --quick)")
    args = parser.parse_args(argv)
    print(f"# bench.scale ({'quick' if args.quick else 'full'}): {machine()}; shared machine: figures are noisy")
    for part in args.parts:
        full, quick = SIZES[part]
        sizes = getattr(args, part) or (quick if args.quick else full)
        started = time.monotonic()
        print(f"\n== {part}: sizes {', '.join(f'{size:,}' for size in sizes)}", flush=True)
        if part == "retained":
            simulate_above = args.simulate_above if args.simulate_above is not None else SIMULATE_ABOVE[args.quick]
            retained(sorted(sizes), Path(args.plots), simulate_above=simulate_above)
        else:
            PARTS[part](sorted(sizes), Path(args.plots))
        print(f"({part}: {time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
