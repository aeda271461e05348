"""podq at the API server's limit: kubesim's API Priority and Fairness model on, side by side in one run.

    .venv/bin/python -m bench.limits [--quick] [--only goodput follow fair priority]

Each case starts a fresh kubesim process (kubelet paused, 25 ms create latency as in ``bench.launch``,
``--limit-rate C``: the mutating requests it completes per second, kube-apiserver's queue defaults) and
a fresh embedded stack (2 workers) on it, submits a backlog, and samples kubesim's counters every
0.25 s (creates accepted; limited requests seated, refused 429 at once, timed out in a queue):

* **goodput** at C = 100 and 400: podq's create budget as shipped (it finds C) against today's static
  default (``PODQ_WORKER_CREATE_RATE=50`` with nothing to find: the old fixed bucket); the sustained
  create rate and the share of create requests answered 429, after 10 s of settling;
* **follow**: C = 200, drops 10× to 20, rises back to 200: when 429s fall under 5 % after the drop, when
  the rate reaches 90 % of C after the rise; then the limit is lifted and every job must be created
  exactly once (none lost, none twice, none stuck);
* **fair**: C = 200, scheduler A submits 20,000 jobs at once, B 5 jobs/s throughout: B's submit → pod
  created p99 and A's rate, with fair shares (the default) and first come first served
  (``PODQ_INTAKE_FAIR_SHARE=false``);
* **priority**: C = 200, one scheduler's backlog with priorities 0–9 arriving over time: priority
  inversions (a job released from the line after a job of higher priority arrived in it and before
  that one was released; the ledger's waiting_at and dispatched_at).

The machine is shared while this runs; every figure says what it was measured against.
"""
from __future__ import annotations

import argparse
import bisect
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.shared import naming
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import KubeSettings, load_settings
from podq.stack import Stack, StackOptions

from .common import kubesim_process, machine, target, wait_until_watching

LATENCY = "0.025"
SAMPLE = 0.25


@dataclass
class Sample:
    at: float
    creates: int
    seated: int
    refused: int


@dataclass
class Sampler:
    """kubesim's counters every SAMPLE seconds while a case runs."""

    admin: object
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Sampler":
        self._thread = threading.Thread(target=self._run, name="bench-limit-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE):
            stats, limit = self.admin.stats(), self.admin.limit()
            self.samples.append(Sample(time.time(), stats["creates"], limit["dispatched"],
                                       limit["rejected"] + limit["timedOut"]))

    def window(self, start: float, end: float) -> tuple[float, float]:
        """Creates/s and the share of limited requests answered 429 between two epoch times."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            return 0.0, 0.0
        first, last = inside[0], inside[-1]
        refused = last.refused - first.refused
        asked = refused + last.seated - first.seated
        return (last.creates - first.creates) / (last.at - first.at), refused / asked if asked else 0.0

    def per_second(self, start: float, end: float) -> list[tuple[float, float, float]]:
        """(seconds from ``start``, creates/s, 429 share) for each second between ``start`` and ``end``."""
        return [(offset, *self.window(start + offset, start + offset + 1.0))
                for offset in range(int(end - start))]


def jobs_for(scheduler: str, count: int, *, priority=lambda index: 0) -> list[KubernetesJob]:
    return [KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="limits", task_id=f"t{index}", run_id=scheduler),
                              command=["true"], priority=priority(index)) for index in range(count)]


def submit(client, jobs: list[KubernetesJob]) -> None:
    for start in range(0, len(jobs), 500):
        submit_many(client, jobs[start:start + 500])


class Case:
    """A kubesim limited to ``rate`` creates/s and a stack on it with ``env``; a context manager."""

    def __init__(self, rate: float, env: dict[str, str]) -> None:
        self.rate, self.env = rate, env

    def __enter__(self) -> "Case":
        self._sim = kubesim_process("--kubelet-paused", "--latency", f"create={LATENCY}", "--limit-rate", f"{self.rate:g}")
        _, kubeconfig, self.admin, _ = self._sim.__enter__()
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        self._stack = Stack(settings, StackOptions(workers=2, extra_env=self.env))
        self.stack = self._stack.__enter__()
        wait_until_watching(self.admin)
        self.client = connect(self.stack.redis_url)
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()
        self._stack.__exit__(*exc)
        self._sim.__exit__(*exc)

    def created_at(self, jobs: list[KubernetesJob]) -> dict[str, float]:
        """job_id -> when kubesim accepted its pod (epoch seconds), for the jobs that have one."""
        by_name = {naming.pod_name_for(job.job_id, job.key): job.job_id for job in jobs}
        return {by_name[entry["name"]]: entry["time"] for entry in self.admin.creates() if entry["name"] in by_name}


ADAPTIVE = {}
STATIC = {"PODQ_WORKER_CREATE_RATE": "50"}   # today's default: a fixed 50/s (the budget has nothing to find)


def goodput(rate: float, *, settle: float, measure: float) -> list[str]:
    lines = [f"#### Goodput at C = {rate:g} creates/s (after {settle:g} s of settling, over {measure:g} s)", "",
             "| podq | creates/s | of C | 429 share |", "| --- | --- | --- | --- |"]
    results = {}
    for label, env in (("create budget (default)", ADAPTIVE), ("static 50/s (old default)", STATIC)):
        with Case(rate, env) as case, Sampler(case.admin) as sampler:
            started = time.time()
            submit(case.client, jobs_for(f"goodput-{uuid.uuid4().hex[:6]}", int(rate * (settle + measure) * 1.3) + 500))
            time.sleep(max(0.0, started + settle + measure + SAMPLE * 2 - time.time()))  # the run's clock
        achieved, refused = sampler.window(started + settle, started + settle + measure)
        results[label] = (achieved, refused)
        lines.append(f"| {label} | {achieved:.1f} | {100 * achieved / rate:.1f} % | {100 * refused:.2f} % |")
    achieved, refused = results["create budget (default)"]
    target(f"goodput at C = {rate:g}: sustained create rate / C", 100 * achieved / rate, goal=95, unit="%")
    target(f"goodput at C = {rate:g}: create requests answered 429", 100 * refused, goal=2, unit="%",
           higher_is_better=False)
    return lines


def follow(rate: float, *, phase: float) -> list[str]:
    low = rate / 10
    with Case(rate, ADAPTIVE) as case, Sampler(case.admin) as sampler:
        jobs = jobs_for(f"follow-{uuid.uuid4().hex[:6]}", int((rate * 3 * phase + low * phase) * 1.1))
        started = time.time()
        submit(case.client, jobs)
        time.sleep(max(0.0, started + phase - time.time()))
        dropped = time.time()
        case.admin.set_limit(rate=low)
        time.sleep(phase)
        risen = time.time()
        case.admin.set_limit(rate=rate)
        time.sleep(2 * phase)
        ended = time.time()
        case.admin.clear_limit()
        deadline = time.monotonic() + 300
        while len(case.created_at(jobs)) < len(jobs) and time.monotonic() < deadline:
            time.sleep(0.5)
        created = Counter(entry["name"] for entry in case.admin.creates())
    names = {naming.pod_name_for(job.job_id, job.key) for job in jobs}
    twice = sum(1 for name in names if created[name] > 1)
    missing = sum(1 for name in names if created[name] == 0)
    after_drop = sampler.per_second(dropped, risen)
    calm = next((offset for offset in range(len(after_drop))
                 if all(share < 0.05 for _, _, share in after_drop[offset:])), None)
    after_rise = sampler.per_second(risen, ended)
    back = next((offset + 1 for offset, achieved, _ in after_rise if achieved >= 0.9 * rate), None)
    lines = [f"#### Following C: {rate:g} → {low:g} → {rate:g} creates/s ({phase:g} s, {phase:g} s, {2 * phase:g} s)", "",
             "Per second after the drop (creates/s, 429 share): " + ", ".join(
                 f"{achieved:.0f}/{100 * share:.0f}%" for _, achieved, share in after_drop),
             "",
             "Per second after the rise: " + ", ".join(f"{achieved:.0f}/{100 * share:.0f}%" for _, achieved, share in after_rise),
             "",
             f"429s under 5 % from **{calm if calm is not None else 'never'} s** after the drop; "
             f"90 % of C reached **{back if back is not None else 'never'} s** after the rise; "
             f"{len(jobs)} jobs: {missing} never created (lost or stuck), {twice} created twice"]
    target("follow: seconds after a 10x drop until 429s stay under 5 %", calm if calm is not None else phase * 10,
           goal=10, unit="s", higher_is_better=False)
    target("follow: seconds after the rise back until 90 % of C", back if back is not None else phase * 10,
           goal=30, unit="s", higher_is_better=False)
    target("follow: jobs lost, stuck or created twice", missing + twice, goal=0, unit="jobs", higher_is_better=False)
    return lines


def fair(rate: float, *, backlog: int, seconds: float) -> list[str]:
    lines = [f"#### Fair shares at C = {rate:g}: A submits {backlog:,} jobs at once, B 5 jobs/s for {seconds:g} s", "",
             "| podq | B submit → created p50 / p99 | B created in the run | A's rate while B submits | of C − B's |",
             "| --- | --- | --- | --- | --- |"]
    results = {}
    for label, env in (("fair shares (default)", ADAPTIVE), ("first come, first served", {"PODQ_INTAKE_FAIR_SHARE": "false"})):
        with Case(rate, env) as case:
            a_jobs = jobs_for(f"fair-a-{uuid.uuid4().hex[:6]}", backlog)
            b_jobs = jobs_for(f"fair-b-{uuid.uuid4().hex[:6]}", int(5 * seconds))
            submit(case.client, a_jobs)
            submitted: dict[str, float] = {}
            started = time.time()
            for index, job in enumerate(b_jobs):
                time.sleep(max(0.0, started + index / 5 - time.time()))   # B's pace: 5 jobs/s
                submitted[job.job_id] = time.time()
                submit_many(case.client, [job])
            ended = time.time()
            time.sleep(2.0)   # B's last jobs: a second or two to be created
            b_created, a_created = case.created_at(b_jobs), case.created_at(a_jobs)
        waits = sorted(b_created[job_id] - at if job_id in b_created else float("inf")
                       for job_id, at in submitted.items())
        p50, p99 = statistics.median(waits), waits[min(len(waits) - 1, int(0.99 * len(waits)))]
        a_rate = sum(1 for at in a_created.values() if started <= at <= ended) / (ended - started)
        share = a_rate / (rate - 5)
        results[label] = (p99, share)
        lines.append(f"| {label} | {p50:.2f} s / {p99:.2f} s | {len(b_created)}/{len(b_jobs)} | {a_rate:.1f}/s | "
                     f"{100 * share:.1f} % |")
    p99, share = results["fair shares (default)"]
    target(f"fair at C = {rate:g}: B's submit → created p99", p99 if p99 != float("inf") else 999.0, goal=1.0,
           unit="s", higher_is_better=False)
    target(f"fair at C = {rate:g}: A's rate / (C − B's rate)", 100 * share, goal=90, unit="%")
    return lines


def priority(rate: float, *, backlog: int, arrivals: int) -> list[str]:
    rng = random.Random(18)
    with Case(rate, ADAPTIVE) as case:
        scheduler = f"prio-{uuid.uuid4().hex[:6]}"
        first = jobs_for(scheduler, backlog)
        later = [KubernetesJob.new(scheduler_id=scheduler, key=TaskKey(dag_id="limits", task_id=f"late{index}", run_id=scheduler),
                                   command=["true"], priority=rng.randrange(10)) for index in range(arrivals)]
        submit(case.client, first)
        for start in range(0, len(later), 25):
            time.sleep(0.25)
            submit_many(case.client, later[start:start + 25])
        jobs = first + later
        deadline = time.monotonic() + 300
        while len(case.created_at(jobs)) < len(jobs) and time.monotonic() < deadline:
            time.sleep(0.5)
        times = ledger_times(case.client, jobs)
    inversions, jobs_passed = inversions_of(times)
    waited = sum(1 for _, arrived, left in times.values() if left > arrived)
    lines = [f"#### Priority at C = {rate:g}: a backlog of {backlog:,} jobs at priority 0, then {arrivals} more with "
             "priorities 0–9 arriving 25 every 0.25 s", "",
             f"{len(times)} jobs read from the ledger, {waited} of them waited in the line; priority inversions "
             f"(a job released after a job of higher priority arrived and before it was released): **{inversions}** "
             f"({jobs_passed} jobs passed over)"]
    target(f"priority at C = {rate:g}: priority inversions", inversions, goal=0, unit="pairs", higher_is_better=False)
    return lines


def ledger_times(client, jobs: list[KubernetesJob]) -> dict[str, tuple[int, float, float]]:
    """job_id -> (priority, when it could first be released: waiting_at or accepted_at, dispatched_at)."""
    pipe = client.pipeline(transaction=False)
    for job in jobs:
        pipe.hmget(f"podq:job:{job.job_id}", ["waiting_at", "accepted_at", "dispatched_at"])
    found = {}
    for job, (waiting_at, accepted_at, dispatched_at) in zip(jobs, pipe.execute()):
        if dispatched_at:
            found[job.job_id] = (job.priority, float(waiting_at or accepted_at), float(dispatched_at))
    return found


def inversions_of(times: dict[str, tuple[int, float, float]]) -> tuple[int, int]:
    """Pairs (high, low) with low's priority below high's, released after high arrived and before high left."""
    by_priority: dict[int, list[float]] = {}
    for prio, _, left in times.values():
        by_priority.setdefault(prio, []).append(left)
    for lefts in by_priority.values():
        lefts.sort()
    pairs, passed = 0, 0
    for prio, arrived, left in times.values():
        count = sum(bisect.bisect_left(lefts, left) - bisect.bisect_right(lefts, arrived)
                    for lower, lefts in by_priority.items() if lower < prio)
        pairs += max(0, count)
        passed += 1 if count > 0 else 0
    return pairs, passed


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="bench.limits")
    parser.add_argument("--quick", action="store_true", help="short phases and small backlogs: checks that it runs")
    parser.add_argument("--only", nargs="*", choices=["goodput", "follow", "fair", "priority"])
    args = parser.parse_args(argv)
    only = set(args.only or ["goodput", "follow", "fair", "priority"])
    quick = args.quick
    lines = [f"### podq at the API server's limit (kubesim --limit-rate C, {LATENCY} s per create; {machine()})", ""]
    if "goodput" in only:
        for rate in ((100.0,) if quick else (100.0, 400.0)):
            lines += goodput(rate, settle=4 if quick else 10, measure=4 if quick else 20) + [""]
    if "follow" in only:
        lines += follow(200.0, phase=5 if quick else 15) + [""]
    if "fair" in only:
        lines += fair(200.0, backlog=2000 if quick else 20000, seconds=5 if quick else 30) + [""]
    if "priority" in only:
        lines += priority(200.0, backlog=300 if quick else 2000, arrivals=100 if quick else 500) + [""]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


if __name__ == "__main__":
    main()
