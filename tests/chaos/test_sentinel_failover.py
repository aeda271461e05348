"""Chaos: the Redis primary SIGKILLed mid-run; Sentinel promotes the replica and podq carries on by itself.

A primary, a replica and three Sentinels run from the embedded server binary
(tests/support/sentinel.py); every service, the producer and the scheduler use
``redis+sentinel://``. While jobs stream in, the primary is SIGKILLed; nobody
restarts anything by hand (the stack restarts a service that exits, as
Kubernetes would). The run reports what was lost (no terminal result), what was
created twice (kubesim's create log), what ended twice (more than one terminal
entry on the raw results stream, or read more than once by the scheduler) and
what ended otherwise than its pod did,
with ``PODQ_REDIS_WAIT_REPLICAS`` at 1 (podq waits for the replica on the writes
that must survive). ``test_failover_quick`` is the pass ``.ci/run`` calls.
"""
from __future__ import annotations

import dataclasses
import time
from collections import Counter

from podq.broker.client.results import ResultsConsumer
from podq.broker.store.connection import connect
from podq.kubesim.admin import Admin
from podq.shared.naming import pod_name_for
from podq.shared.settings import load_settings
from podq.stack import Stack, StackOptions
from tests.support import wait_for
from tests.support.sentinel import SentinelCluster
from tests.support.system import CHAOS_ENV, NAMESPACE, Collector, Producer, make_jobs, new_scheduler, terminal_counts

# Jobs still without a terminal result this long after the last submission count as lost.
SETTLE = 90.0


@dataclasses.dataclass
class FailoverReport:
    jobs: int
    wait_replicas: int
    promoted_seconds: float
    lost: int
    duplicated: int
    doubled: int
    wrong: int
    drain_seconds: float

    def line(self) -> str:
        return (f"sentinel failover: {self.jobs} jobs, WAIT replicas {self.wait_replicas}: replica promoted "
                f"{self.promoted_seconds:.1f} s after the primary's SIGKILL; lost {self.lost}, duplicated "
                f"{self.duplicated}, ended twice {self.doubled}, ended otherwise than their pod {self.wrong}; drained {self.drain_seconds:.1f} s "
                f"after the last submission")


def run_failover(tmp_path, *, count: int, wait_replicas: int = 1) -> FailoverReport:
    with SentinelCluster(tmp_path / "redis") as cluster:
        env = {**CHAOS_ENV, "PODQ_REDIS_WAIT_REPLICAS": str(wait_replicas)}
        options = StackOptions(workers=2, worker_concurrency=4, data_dir=str(tmp_path / "stack"), extra_env=env,
                               restart=True)
        with Stack(load_settings({"PODQ_REDIS_URL": cluster.url, **env}), options) as stack:
            settings = load_settings({"PODQ_REDIS_URL": cluster.url, **env})
            client = connect(cluster.url, settings=settings.redis, block_ms=200)
            scheduler_id = new_scheduler("failover")
            collector = Collector(ResultsConsumer(client, scheduler_id=scheduler_id, consumer="scheduler-1"))
            jobs, expected = make_jobs(scheduler_id, count)
            producer = Producer(cluster.url, jobs, batch=10, interval=0.05)
            admin = Admin(stack.kubesim_url)
            producer.start()
            producer.wait_sent(count // 3, timeout=60)
            wait_for(lambda: admin.create_count(namespace=NAMESPACE) > 0, timeout=30, message="creates under way")
            old = cluster.kill_primary()
            killed = time.monotonic()
            cluster.wait_promoted(old)
            promoted = time.monotonic() - killed
            producer.finish(timeout=180)
            submitted = time.monotonic()
            wanted = set(expected)
            finished_at: dict[str, float] = {}
            collector.read_for(wanted, SETTLE, finished_at)
            drain = (max(finished_at.values()) if len(finished_at) == len(wanted) else time.monotonic()) - submitted
            created = Counter(entry["name"] for entry in admin.creates(namespace=NAMESPACE))
            ends = {job_id: [r.state for r in items if r.terminal] for job_id, items in collector.by_job.items()}
            on_stream = terminal_counts(client, scheduler_id)
            report = FailoverReport(
                jobs=count, wait_replicas=wait_replicas, promoted_seconds=promoted,
                lost=len(wanted - finished_at.keys()),
                duplicated=sum(1 for job in jobs if created[pod_name_for(job.job_id, job.key)] > 1),
                doubled=sum(1 for job_id in wanted if on_stream[job_id] > 1 or len(ends.get(job_id, ())) > 1),
                wrong=sum(1 for job_id, states in ends.items() if states and states[0] is not expected[job_id]),
                drain_seconds=max(0.0, drain))
            print(report.line() + f" (logs in {stack.log_dir}; service restarts "
                                  f"{ {name: len(at) for name, at in stack.restarts.items()} })")
            client.close()
            return report


def test_failover_quick(tmp_path):
    report = run_failover(tmp_path, count=150)
    assert (report.lost, report.duplicated, report.doubled) == (0, 0, 0), report.line()


def test_failover_500_jobs(tmp_path):
    report = run_failover(tmp_path, count=500)
    assert (report.lost, report.duplicated, report.doubled) == (0, 0, 0), report.line()


if __name__ == "__main__":
    # The figures in docs/operations.md: python -m tests.chaos.test_sentinel_failover [JOBS [WAIT_REPLICAS]]
    import sys
    import tempfile
    from pathlib import Path

    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    replicas = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory(prefix="podq-failover-") as directory:
        run_failover(Path(directory), count=jobs, wait_replicas=replicas)
