"""Chaos: workers SIGKILLed every few seconds while jobs stream in, on default settings.

The embedded stack runs with podq's default settings (300 s visibility timeout,
30 s orphan redispatch): only the workers' liveness records can bring a killed
worker's messages back in seconds. Two ``podq worker`` processes are killed in
turn (SIGKILL) every ``kill_every`` seconds while the producer submits, each
restarted at once as Kubernetes would. The run must drain (every job's terminal
result read) within 60 s of the last submission, with no pod created twice and
no job lost. Each run reports lost / duplicated / drain time.

``test_worker_storm_quick`` is the short pass ``.ci/run`` calls; the 600-job storm
runs in ``make chaos``.
"""
from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter

from podq.broker.store.connection import connect
from podq.broker.client.results import ResultsConsumer
from podq.kubesim.admin import Admin
from podq.shared.naming import pod_name_for
from podq.shared.settings import Settings

from tests.support import wait_for
from tests.support.system import (CHAOS_ENV, NAMESPACE, Collector, Producer, assert_exactly_once, chaos_stack, check_alive,
                     kill, make_jobs, new_scheduler, worker_argv)

# The bound: drained within this long of the last submission.
DRAIN_BOUND = 60.0
# Jobs still without a terminal result this long after the bound count as lost (not merely late).
LOST_AFTER = 60.0


def default_settings_env() -> dict[str, str]:
    """The chaos suite's shortened settings put back to podq's defaults (trimming stays off: the audit
    reads the whole results stream)."""
    env = {}
    defaults = Settings()
    for name in CHAOS_ENV:
        if name == "PODQ_TRIM_INTERVAL":
            continue
        section, _, field = name[len("PODQ_"):].lower().partition("_")
        env[name] = str(getattr(getattr(defaults, section), field))
    return env


@dataclasses.dataclass
class StormReport:
    jobs: int
    kills: int
    lost: int
    late: int
    duplicated: int
    drain_seconds: float
    restored: int

    def line(self) -> str:
        return (f"worker storm: {self.jobs} jobs, {self.kills} worker SIGKILLs, {self.restored} messages of killed "
                f"workers returned by live ones: lost {self.lost}, "
                f"duplicated {self.duplicated}, late {self.late}, drained {self.drain_seconds:.1f} s "
                f"after the last submission")


def run_storm(tmp_path, *, count: int, per_second: float, kill_every: float,
              create_latency: float = 0.3) -> StormReport:
    with chaos_stack(tmp_path, workers=2, concurrency=4, **default_settings_env()) as stack:
        client = connect(stack.redis_url, block_ms=200)
        scheduler_id = new_scheduler("storm")
        collector = Collector(ResultsConsumer(client, scheduler_id=scheduler_id, consumer="scheduler-1"))
        jobs, expected = make_jobs(scheduler_id, count)
        producer = Producer(stack.redis_url, jobs, batch=10, interval=10 / per_second)
        admin = Admin(stack.kubesim_url)
        # Creates take a while, so a killed worker always dies holding some.
        admin.set_latency("create", seconds=create_latency, jitter=create_latency / 3)
        kills = 0
        wanted = set(expected)
        finished_at: dict[str, float] = {}

        producer.start()
        while producer.is_alive():
            collector.read_for(wanted, kill_every, finished_at)
            if not producer.is_alive():
                break
            name = f"worker-{1 + kills % 2}"
            wait_for(lambda: admin.stats().get("inFlight", 0) > 0 or not producer.is_alive(), timeout=20,
                     interval=0, message="creates in flight")
            kill(stack, name)
            stack.spawn(name, worker_argv(1 + kills % 2))
            kills += 1
        producer.finish()
        submitted = time.monotonic()
        collector.read_for(wanted, DRAIN_BOUND + LOST_AFTER, finished_at)
        check_alive(stack)
        drain = max(0.0, (max(finished_at.values()) if len(finished_at) == len(wanted) else time.monotonic())
                    - submitted)
        restored = sum(restored_messages(path.read_text(errors="replace"))
                       for path in stack.log_dir.glob("worker-*.log"))
        created = Counter(entry["name"] for entry in admin.creates(namespace=NAMESPACE))
        report = StormReport(
            jobs=count, kills=kills, lost=len(wanted - finished_at.keys()),
            late=sum(1 for at in finished_at.values() if at - submitted > DRAIN_BOUND),
            duplicated=sum(1 for job in jobs if created[pod_name_for(job.job_id, job.key)] > 1),
            drain_seconds=drain, restored=restored)
        print(report.line() + f" (logs in {stack.log_dir})")
        assert report.lost == 0 and report.duplicated == 0, report.line()
        assert report.drain_seconds <= DRAIN_BOUND, report.line()
        assert_exactly_once(stack, client, jobs, expected, collector)
        client.close()
        return report


def restored_messages(log: str) -> int:
    """How many messages a worker's log says it returned to the queue for dead workers."""
    return sum(int(match) for match in re.findall(r"(\d+) messages of dead workers returned to the queue", log))


def test_worker_storm_quick(tmp_path):
    run_storm(tmp_path, count=150, per_second=20, kill_every=2.5)


def test_worker_storm_600_jobs(tmp_path):
    run_storm(tmp_path, count=600, per_second=30, kill_every=3.0)
