"""Helpers for the whole-system chaos scenarios: a stack, a paced producer, and the final audit.

Every scenario runs the real services as processes (``podq.stack.Stack``), streams
jobs in through ``podq:jobs`` as a producer does, breaks something, and ends with
the same audit (:func:`assert_exactly_once`): kubesim's create log holds exactly
one create per job, and every job has exactly one terminal result on its
scheduler's stream, with the outcome its pod was told to have.
"""
from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import pytest
import redis

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.ledger import Ledger
from podq.kubesim.admin import Admin
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, KubernetesResults, KubernetesWatch, TaskKey
from podq.shared.settings import load_settings
from podq.shared.states import LedgerState, State
from podq.stack import Stack, StackOptions
from . import wait_for

NAMESPACE = "default"
SIM = "kubesim.podq.io/"
# Short enough that recovery happens within seconds (see each setting's docstring in shared/settings.py).
CHAOS_ENV = {
    "PODQ_WORKER_VISIBILITY_TIMEOUT": "6",
    "PODQ_KUBE_REQUEST_TIMEOUT": "3",
    "PODQ_WATCHER_LEASE_TTL": "3",
    "PODQ_WATCHER_LEASE_POLL": "0.5",
    "PODQ_INTAKE_BATCH_SIZE": "25",
    # A message lost with a Redis crash is pushed again after this long (production: 30 s).
    "PODQ_INTAKE_REDISPATCH_AFTER": "3",
    # Trimming would remove acknowledged results; the audit reads the whole results stream.
    "PODQ_TRIM_INTERVAL": "3600",
}
# The services the stack starts, and how to start each again after a kill.
SERVICE_ARGV = {"intake": ["intake", "--consumer", "intake-1"],
                "watcher": ["watcher", "--namespace", NAMESPACE]}
_schedulers = itertools.count()


@contextlib.contextmanager
def chaos_stack(tmp_path, *, workers: int = 2, concurrency: int = 4, restart: bool = False,
                **env: str) -> Iterator[Stack]:
    """The embedded stack (Valkey, kubesim, intake, ``workers`` workers, watcher) with chaos settings.

    ``restart``: the stack restarts services that exit on their own, as a container runtime would.
    """
    options = StackOptions(workers=workers, worker_concurrency=concurrency, data_dir=str(tmp_path / "stack"),
                           extra_env={**CHAOS_ENV, **env}, restart=restart)
    with Stack(load_settings({}), options) as stack:
        try:
            yield stack
        except BaseException:
            print(f"service logs: {stack.log_dir}")
            raise


def worker_argv(index: int, concurrency: int = 4) -> list[str]:
    return ["worker", "--hostname", f"worker-{index}@podq", "--concurrency", str(concurrency)]


def kill(stack: Stack, name: str) -> int:
    """SIGKILL service ``name`` and reap it; returns the pid it had."""
    process = stack.processes[name]
    assert process.poll() is None, f"{name} had already exited with {process.returncode} before the kill"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    return process.pid


def new_scheduler(label: str) -> str:
    return f"chaos-{label}-{next(_schedulers)}-{time.time_ns()}"


def make_jobs(scheduler_id: str, count: int, *, run_seconds: float = 0.3,
              fail_every: int = 5) -> tuple[list[KubernetesJob], dict[str, State]]:
    """``count`` jobs; every ``fail_every``-th pod exits 1. Returns the jobs and each job's expected end."""
    jobs, expected = [], {}
    for n in range(count):
        annotations = {f"{SIM}run-seconds": str(run_seconds)}
        fails = fail_every and n % fail_every == fail_every - 1
        if fails:
            annotations[f"{SIM}exit-code"] = "1"
        key = TaskKey(dag_id="chaos", task_id=f"t{n}", run_id="run", try_number=1)
        job = KubernetesJob.new(scheduler_id=scheduler_id, key=key, command=["true"],
                                pod_override={"metadata": {"annotations": annotations}})
        jobs.append(job)
        expected[job.job_id] = State.FAILED if fails else State.SUCCEEDED
    return jobs, expected


class Producer(threading.Thread):
    """Streams jobs into ``podq:jobs`` in small batches at a steady pace, as a scheduler would.

    Its client retries through a Redis restart like podq's own (a retried XADD may
    add an entry twice; intake's ledger absorbs that). ``sent`` counts jobs whose
    XADD was acknowledged.
    """

    def __init__(self, redis_url: str, jobs: Sequence[KubernetesJob], *, batch: int = 10,
                 interval: float = 0.05, hold_at: int | None = None) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.client = connect(redis_url)
        self.jobs = list(jobs)
        self.batch = batch
        self.interval = interval
        self.sent = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()
        # With hold_at, the producer pauses once that many jobs are sent, until release().
        self.hold_at = hold_at
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    @property
    def holding(self) -> bool:
        return self.hold_at is not None and self.sent >= self.hold_at and not self._released.is_set()

    def run(self) -> None:
        try:
            for start in range(0, len(self.jobs), self.batch):
                while self.holding and not self._halt.is_set():
                    self._released.wait(0.1)
                if self._halt.is_set():
                    return
                submit_many(self.client, self.jobs[start:start + self.batch])
                self.sent = min(len(self.jobs), start + self.batch)
                # Pacing, not waiting for a condition: jobs arrive over time.
                self._halt.wait(self.interval)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc
        finally:
            self.client.close()

    def wait_sent(self, count: int, *, timeout: float = 30.0) -> None:
        wait_for(lambda: self.sent >= count or self.error, timeout=timeout, message=f"{count} jobs submitted")
        assert self.error is None, f"the producer failed: {self.error!r}"

    def finish(self, *, timeout: float = 60.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the producer did not finish"
        assert self.error is None, f"the producer failed: {self.error!r}"
        assert self.sent == len(self.jobs)

    def cancel(self) -> None:
        self._halt.set()
        self._released.set()


@dataclass
class Collector:
    """The scheduler: reads its results stream with a ResultsConsumer and acks what it read."""

    consumer: ResultsConsumer
    by_job: dict[str, list[KubernetesResults]] = field(default_factory=dict)

    def step(self) -> int:
        return self.take(self.consumer.read(block_ms=200))

    def take(self, batch: Sequence[KubernetesResults]) -> int:
        """Record results read elsewhere (by an earlier consumer) and acknowledge them."""
        for result in batch:
            self.by_job.setdefault(result.job_id, []).append(result)
        self.consumer.ack(batch)
        return len(batch)

    def terminal_jobs(self) -> set[str]:
        return {job_id for job_id, items in self.by_job.items() if any(r.terminal for r in items)}

    def ends(self) -> dict[str, State]:
        """Each job's first terminal state read."""
        return {job_id: next(r.state for r in items if r.terminal)
                for job_id, items in self.by_job.items() if any(r.terminal for r in items)}

    def read_for(self, job_ids: set[str], seconds: float, finished_at: dict[str, float]) -> None:
        """Read for up to ``seconds`` (a scenario's pace), or until every job in ``job_ids`` has ended;
        ``finished_at`` gets the monotonic time each job's terminal result was read."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and not job_ids <= finished_at.keys():
            self.step()
            now = time.monotonic()
            for job_id in self.terminal_jobs() - finished_at.keys():
                finished_at[job_id] = now

    def until_all_terminal(self, job_ids: set[str], *, timeout: float, stack: Stack | None = None,
                           stall: float = 15.0) -> None:
        """Read until every job in ``job_ids`` has a terminal result.

        Raises :class:`JobsOrphaned` early when no result has arrived for ``stall`` seconds and every
        job still missing one is orphaned (see :func:`orphaned`): nothing in podq would ever run it.
        """
        progress = {"at": time.monotonic()}

        def done():
            if self.step():
                progress["at"] = time.monotonic()
            if stack is not None:
                check_alive(stack)
            missing = job_ids - self.terminal_jobs()
            if missing and time.monotonic() - progress["at"] > stall and orphaned(self.consumer.client, missing):
                raise JobsOrphaned(f"{len(missing)} jobs orphaned: {describe(self.consumer.client, sorted(missing), stack)}")
            return not missing
        try:
            wait_for(done, timeout=timeout, interval=0, message=f"a terminal result for each of {len(job_ids)} jobs")
        except pytest.fail.Exception:
            missing = sorted(job_ids - self.terminal_jobs())
            raise AssertionError(f"{len(missing)} jobs have no terminal result; "
                                 f"{describe(self.consumer.client, missing, stack)}") from None


class JobsOrphaned(AssertionError):
    """Jobs the ledger holds as accepted or dispatched, never claimed by a worker, with no message left anywhere."""


def orphaned(client, job_ids) -> bool:
    """True if none of ``job_ids`` can make progress: never claimed, and no intake entry or Celery message left.

    False when it cannot tell: intake has not made its group yet (a slow start), or ``client`` is a
    scheduler's least-privilege user, which may not read the queues (tests/integration/test_redis_acl.py).
    """
    try:
        return _orphaned(client, job_ids)
    except redis.exceptions.ResponseError:   # NOGROUP, NOPERM
        return False


def _orphaned(client, job_ids) -> bool:
    if client.llen(keys.CELERY_QUEUE) or client.hlen("unacked") or client.zcard(keys.DELAYED_ZSET):
        return False
    if client.xpending(keys.JOBS_STREAM, keys.INTAKE_GROUP)["pending"]:
        return False
    ledger = Ledger(client)
    entries = [ledger.get(job_id) for job_id in job_ids]
    return all(entry is not None and entry.state in (LedgerState.ACCEPTED, LedgerState.DISPATCHED)
               and entry.deliveries == 0 for entry in entries)


def describe(client, job_ids: Sequence[str], stack: Stack | None) -> str:
    """Where stuck jobs stand: ledger states, Celery queue, creates, services (for failure messages)."""
    ledger = Ledger(client)
    entries = [ledger.get(job_id) for job_id in job_ids]
    states = Counter(entry.state.value if entry and entry.state else None for entry in entries)
    info = {"ledger": dict(states), "claimed": sum(1 for entry in entries if entry and entry.deliveries),
            "queue": client.llen(keys.CELERY_QUEUE), "unacked": client.hlen("unacked"),
            "delayed": client.zcard(keys.DELAYED_ZSET)}
    if entries and entries[0] is not None:
        info["first"] = {"job": entries[0].job_id, "pod": entries[0].pod_name, "state": entries[0].state,
                         "last_state": entries[0].last_state}
    if stack is not None:
        admin = Admin(stack.kubesim_url)
        info["creates"] = admin.create_count(namespace=NAMESPACE)
        if entries and entries[0] is not None and entries[0].pod_name:
            info["first_creates"] = admin.create_count(namespace=NAMESPACE, name_prefix=entries[0].pod_name)
        info["dead"] = died(stack)
        info["logs"] = str(stack.log_dir)
    return repr(info)


def died(stack: Stack) -> dict[str, int | None]:
    return {name: stack.processes[name].returncode for name in stack.dead()}


class ServiceDied(AssertionError):
    """A service the test did not kill has exited."""


def check_alive(stack: Stack) -> None:
    """Fail if any service has exited (naming the logs)."""
    dead = died(stack)
    if dead:
        raise ServiceDied(f"services died: {dead} (logs in {stack.log_dir})")


def stream_results(client, scheduler_id: str) -> list[KubernetesWatch]:
    """Every entry of the scheduler's results stream (trimming is off in these scenarios)."""
    return [KubernetesWatch.decode(fields[b"record"]) for _, fields in client.xrange(keys.results_stream(scheduler_id))]


def terminal_counts(client, scheduler_id: str) -> Counter:
    """How many terminal entries each job has on the scheduler's raw results stream."""
    return Counter(watch.job_id for watch in stream_results(client, scheduler_id) if watch.state.terminal)


def assert_exactly_once(stack: Stack, client, jobs: Sequence[KubernetesJob], expected: dict[str, State],
                        collector: Collector, *, timeout: float = 60.0,
                        others: Sequence[KubernetesJob] = ()) -> None:
    """The scenario's end: one create per job, one terminal result per job with the expected state.

    ``others``: jobs of other schedulers in the same stack, whose pods are expected too (created once each).
    """
    collector.until_all_terminal(set(expected), timeout=timeout, stack=stack)
    # Let every queue drain, so a duplicate create still on its way cannot slip past the count.
    wait_for(lambda: client.llen(keys.CELERY_QUEUE) == 0 and client.hlen("unacked") == 0,
             timeout=30, message="the Celery queue and its unacked messages to drain")
    ledger = Ledger(client)
    states = {job.job_id: (entry.state if (entry := ledger.get(job.job_id)) else None) for job in jobs}
    assert {job_id: state for job_id, state in states.items() if state is not LedgerState.TERMINAL} == {}

    names = {pod_name_for(job.job_id, job.key) for job in (*jobs, *others)}
    log = Admin(stack.kubesim_url).creates(namespace=NAMESPACE)
    created = Counter(entry["name"] for entry in log)
    twice = {name: n for name, n in created.items() if n != 1}
    if twice:
        detail = {name: [(entry["time"], entry["uid"]) for entry in log if entry["name"] == name]
                  for name in sorted(twice)[:3]}
        raise AssertionError(f"{len(twice)} pods created more than once: {detail} (logs in {stack.log_dir})")
    assert set(created) == names, (f"missing creates: {sorted(names - set(created))[:5]}; "
                                   f"unexpected: {sorted(set(created) - names)[:5]}")

    # The raw stream, not the consumer's deduplicated view: exactly one terminal entry per job.
    scheduler_id = jobs[0].scheduler_id
    terminal = Counter()
    ends: dict[str, State] = {}
    for watch in stream_results(client, scheduler_id):
        assert watch.job_id in expected, f"result for a job nobody submitted: {watch}"
        if watch.state.terminal:
            terminal[watch.job_id] += 1
            ends[watch.job_id] = watch.state
    assert {job_id: n for job_id, n in terminal.items() if n != 1} == {}, "jobs with several terminal results"
    wrong = {job_id: (ends.get(job_id), want) for job_id, want in expected.items() if ends.get(job_id) is not want}
    assert wrong == {}, f"{len(wrong)} jobs ended otherwise than expected (got, want): {list(wrong.items())[:5]}"
    # What the scheduler read agrees with the stream, and it acknowledged everything.
    seen = {job_id: [r.state for r in items if r.terminal] for job_id, items in collector.by_job.items()}
    assert {job_id: got for job_id, got in seen.items() if got != [expected[job_id]]} == {}
    pending = client.xpending(keys.results_stream(scheduler_id), keys.RESULTS_GROUP)
    assert pending["pending"] == 0
