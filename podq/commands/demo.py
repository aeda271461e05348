"""`podq demo`: run the embedded stack, push N jobs through it, and report every job's fate."""
from __future__ import annotations

import sys
import time

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.states import State
from podq.stack import Stack, StackOptions

from .up import cluster_names, kubesim_lines

from ._common import Interrupt

SCHEDULER_ID = "podq-demo"
FAIL_EVERY = 7
SIM = "kubesim.podq.io/"


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the embedded stack and N jobs through it")
    parser.add_argument("--jobs", type=int, default=20, help="how many jobs (default 20)")
    parser.add_argument("--run-seconds", type=float, default=1.0, help="how long each pod runs")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--clusters", type=cluster_names, default=(), metavar="A,B",
                        help="a cell of several clusters (one kubesim each); the jobs name them in turn")
    parser.set_defaults(run=run)


def demo_jobs(count: int, run_seconds: float, clusters: tuple[str, ...] = ()) -> tuple[list[KubernetesJob], set[str]]:
    """``count`` jobs; every FAIL_EVERY-th one asks kubesim to exit 1; with ``clusters``, the jobs name
    them in turn. Returns jobs and failing ids."""
    run_id = time.strftime("demo__%Y-%m-%dT%H:%M:%S")
    jobs, failing = [], set()
    for index in range(count):
        fails = index % FAIL_EVERY == FAIL_EVERY - 1
        annotations = {f"{SIM}run-seconds": str(run_seconds)}
        if fails:
            annotations[f"{SIM}exit-code"] = "1"
        key = TaskKey(dag_id="demo", task_id=f"task_{index:03d}", run_id=run_id, try_number=1)
        job = KubernetesJob.new(scheduler_id=SCHEDULER_ID, key=key,
                                command=["python", "-c", f"print('task {index}')"],
                                pod_override={"metadata": {"annotations": annotations}},
                                cluster=clusters[index % len(clusters)] if clusters else None)
        jobs.append(job)
        if fails:
            failing.add(job.job_id)
    return jobs, failing


def run(args, settings) -> int:
    if args.jobs < 1:
        print("podq demo: --jobs must be at least 1", file=sys.stderr)
        return 2
    stop = Interrupt()
    print(f"podq demo: starting the embedded stack ({args.workers} workers) ...", flush=True)
    with Stack(settings, StackOptions(workers=args.workers, restart=True, clusters=args.clusters)) as stack:
        print(f"  redis   {stack.redis_url}\n  kubesim {stack.kubesim_url or '(external cluster)'}{kubesim_lines(stack)}\n"
              f"  logs    {stack.log_dir}", flush=True)
        if stack.kubesim_url:
            print("  pods    SIMULATED: kubesim runs no command (docs/kubesim.md; `podq up --run-containers` "
                  "runs them on this host)", flush=True)
        client = connect(stack.redis_url, block_ms=500)
        jobs, failing = demo_jobs(args.jobs, args.run_seconds, args.clusters)
        consumer = ResultsConsumer(client, scheduler_id=SCHEDULER_ID, consumer="demo", block_ms=500)
        started = time.monotonic()
        submit_many(client, jobs)
        print(f"podq demo: submitted {len(jobs)} jobs ({len(failing)} made to fail)", flush=True)
        final = follow(consumer, jobs, stack=stack, stop=stop, started=started, timeout=args.timeout)
    code = report(jobs, failing, final, interrupted=stop.is_set())
    return stop.exit_code(code)


def follow(consumer, jobs, *, stack, stop, started, timeout) -> dict[str, tuple[State, float, str | None]]:
    """Read results until every job has a terminal one, the timeout passes, or a stop."""
    final: dict[str, tuple[State, float, str | None]] = {}
    seen: dict[State, int] = {}
    wanted = {job.job_id for job in jobs}
    jobs_clusters = {job.cluster for job in jobs}
    while len(final) < len(wanted) and not stop.is_set():
        if time.monotonic() - started > timeout:
            break
        if stack.dead():
            print(f"podq demo: service(s) exited: {', '.join(stack.dead())}; see {stack.log_dir}", file=sys.stderr)
            break
        batch = consumer.read()
        for result in batch:
            seen[result.state] = seen.get(result.state, 0) + 1
            if result.terminal and result.job_id in wanted:
                where = f"{result.cluster}/{result.pod_name}" if result.cluster and len(jobs_clusters) > 1 else result.pod_name
                final.setdefault(result.job_id, (result.state, time.monotonic() - started, where))
        consumer.ack(batch)
        if batch:
            counts = " ".join(f"{state.value}={count}" for state, count in sorted(seen.items(), key=lambda kv: kv[0].value))
            print(f"  [{time.monotonic() - started:6.1f}s] results: {counts}  terminal {len(final)}/{len(wanted)}", flush=True)
    return final


def report(jobs, failing, final, *, interrupted: bool) -> int:
    print("\n  task key                                      pod                                  state      seconds")
    for job in jobs:
        state, seconds, pod = final.get(job.job_id, (None, None, None))
        shown = state.value if state else "(none)"
        timing = f"{seconds:7.2f}" if seconds is not None else "      -"
        print(f"  {str(job.key)[:44]:<44}  {(pod or '-')[:36]:<36} {shown:<9} {timing}")
    counts: dict[str, int] = {}
    for state, _seconds, _pod in final.values():
        counts[state.value] = counts.get(state.value, 0) + 1
    print("\nsummary: " + ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
          + f" — {len(final)}/{len(jobs)} jobs terminal")
    expected = {job.job_id: State.FAILED if job.job_id in failing else State.SUCCEEDED for job in jobs}
    wrong = [job for job in jobs if job.job_id in final and final[job.job_id][0] is not expected[job.job_id]]
    if interrupted:
        print("podq demo: interrupted", file=sys.stderr)
        return 1
    if len(final) < len(jobs):
        print(f"podq demo: {len(jobs) - len(final)} job(s) never reached a terminal result", file=sys.stderr)
        return 1
    if wrong:
        print(f"podq demo: {len(wrong)} job(s) ended differently than planned: "
              + ", ".join(f"{job.key.task_id}={final[job.job_id][0].value}" for job in wrong), file=sys.stderr)
        return 1
    print("podq demo: every job reached its expected terminal result")
    return 0
