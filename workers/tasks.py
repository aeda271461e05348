"""The Celery tasks: thin adapters from a message to :mod:`.create` and :mod:`.control`.

``podq.create_pod`` receives one positional argument, a list of msgpack job
records (broker/queue/envelopes.py), and creates them concurrently on the runtime's
pool, each job's failure kept to itself. Job-level failures are results, not
exceptions. An unexpected error (a bug, Redis unreachable) is logged with its
traceback and the message is rejected with requeue, so it comes back; the
ledger makes the replay harmless and the poison guard bounds it.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import wait
from typing import Mapping, Sequence

from celery import Celery
from celery.exceptions import Reject

from podq.broker.queue.envelopes import CONTROL_TASK, CREATE_TASK
from podq.broker.store import keys
from podq.broker.store.ledger import Claim, Lease
from podq.shared import metrics, tracing
from podq.shared.errors import DecodeError
from podq.shared.records import ControlRecord, KubernetesJob

from .control import run_control
from .create import Created, Outcome, create_job, delivery_lease, mark_created, settle
from .runtime import Runtime

log = logging.getLogger(__name__)

# shared=False: each app gets its own tasks, bound to its own runtime (never to another app's).
TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True, "shared": False}


def create_batch(payloads: Sequence[bytes], rt: Runtime) -> tuple[list[Outcome | None], int]:
    """Create every job of one message; returns each job's outcome (None: crashed) and the crash count."""
    deadline = time.monotonic() + rt.budget
    jobs: list[tuple[KubernetesJob, bytes]] = []
    for payload in payloads:
        try:
            job = KubernetesJob.decode(payload)
        except DecodeError as exc:
            # Intake checked this record; failing to read it here is a version skew.
            log.error("create_pod: dropping a job record this worker cannot read: %s", exc)
            continue
        if job.cluster != rt.cluster:
            # Never created elsewhere than where the ledger says: the job stays dispatched, and
            # intake's orphan sweep pushes it to its own cluster's queue.
            log.error("job %s (%s): routed to cluster %s, but it came on the queue of %s; left to the orphan "
                      "sweep", job.job_id, job.key, job.cluster or "(default)", rt.cluster or "(default)")
            continue
        jobs.append((job, payload))
    epoch = rt.heartbeat.epoch if rt.heartbeat else 0
    lease = delivery_lease(rt)
    claims = rt.ledger.claim_jobs([job.job_id for job, _ in jobs], lease) if jobs else []
    count_deliveries(claims)
    # Every create takes one of the process's slots (rt.executor), whichever message it came in.
    futures = [rt.executor.submit(_guarded, job, payload, rt, deadline, claim, lease, epoch)
               for (job, payload), claim in zip(jobs, claims)]
    wait(futures)  # one wake-up when the last answers, not one per job
    ends = [future.result() for future in futures]
    outcomes = _mark_created(ends, rt)
    # This process's rate; the exact total of pods created is counted by the ledger's created step.
    for outcome in outcomes:
        metrics.POD_CREATES.labels(rt.settings.kube.cluster, outcome.value if outcome else "crashed").inc()
    return outcomes, sum(1 for outcome in outcomes if outcome is None)


def _guarded(job: KubernetesJob, payload: bytes, rt: Runtime, deadline: float, claim: Claim, lease: Lease,
             epoch: int) -> Outcome | Created | None:
    try:
        with tracing.about_job(job.job_id, job.traceparent), \
                tracing.span("podq.create", job.traceparent, job_id=job.job_id):
            return create_job(job, payload, rt, deadline=deadline, claim=claim, lease=lease, epoch=epoch)
    except Exception:  # noqa: BLE001 - one job's crash must not take its batch-mates down
        log.exception("job %s (%s): create crashed; the message will be redelivered", job.job_id, job.key)
        return None


def _mark_created(ends: Sequence[Outcome | Created | None], rt: Runtime) -> list[Outcome | None]:
    """Every job's outcome: the pods of the message are recorded in the ledger in one call."""
    created = [end for end in ends if isinstance(end, Created)]
    if not created:
        return list(ends)  # type: ignore[arg-type]
    try:
        marks = iter(mark_created(rt, created))
    except Exception:  # noqa: BLE001 - logged; the message comes back and finds its pods by name
        log.exception("create_pod: recording %d created pods in the ledger crashed; the message will be "
                      "redelivered", len(created))
        return [None if isinstance(end, Created) else end for end in ends]
    return [_settled(end, next(marks), rt) if isinstance(end, Created) else end for end in ends]


def _settled(created: Created, mark: tuple[bool, str], rt: Runtime) -> Outcome | None:
    job = created.job
    try:
        with tracing.about_job(job.job_id, job.traceparent):
            return settle(rt, created, *mark)
    except Exception:  # noqa: BLE001 - one job's crash must not take its batch-mates down
        log.exception("job %s (%s): create crashed; the message will be redelivered", job.job_id, job.key)
        return None


def count_deliveries(claims: Sequence[Claim]) -> None:
    """Deliveries that claimed their job, and those of jobs delivered before."""
    taken = [claim for claim in claims if not claim.busy]
    metrics.DELIVERIES.inc(len(taken))
    metrics.REDELIVERIES.inc(sum(1 for claim in taken if claim.deliveries > 1))


def register_tasks(app: Celery, runtimes: Runtime | Mapping[str | None, Runtime]) -> None:
    """Define ``podq.create_pod`` and ``podq.control`` on ``app``, bound to ``runtimes``: one
    :class:`Runtime`, or one per cluster (a message is handled by the runtime of the cluster
    whose Celery queue it came from)."""
    by_cluster = {runtimes.cluster: runtimes} if isinstance(runtimes, Runtime) else dict(runtimes)
    by_queue = {keys.celery_queue(cluster): runtime for cluster, runtime in by_cluster.items()}
    only = next(iter(by_cluster.values())) if len(by_cluster) == 1 else None

    def runtime_of(request) -> Runtime:
        if only is not None:
            return only
        queue = (getattr(request, "delivery_info", None) or {}).get("routing_key")
        if queue not in by_queue:
            raise Reject(f"a message from queue {queue!r}, which this worker does not serve", requeue=True)
        return by_queue[queue]

    @app.task(name=CREATE_TASK, bind=True, **TASK_OPTIONS)
    def create_pod(self, payloads: list[bytes]) -> None:
        outcomes, crashed = create_batch(_as_list(payloads), runtime_of(self.request))
        if crashed:
            raise Reject(f"{crashed} of {len(outcomes)} jobs crashed", requeue=True)

    @app.task(name=CONTROL_TASK, bind=True, **TASK_OPTIONS)
    def control(self, payloads: list[bytes]) -> None:
        rt = runtime_of(self.request)
        deadline = time.monotonic() + rt.budget
        for payload in _as_list(payloads):
            try:
                record = ControlRecord.decode(payload)
            except DecodeError as exc:
                log.error("control: dropping a record this worker cannot read: %s", exc)
                continue
            try:
                done = run_control(record, rt, deadline=deadline)
            except Exception:  # noqa: BLE001 - logged, then the message comes back
                log.exception("control %s for %s crashed; the message will be redelivered",
                              record.op.value, record.job_id or record.scheduler_id)
                raise Reject("control crashed", requeue=True) from None
            log.info("control %s for %s: %s", record.op.value, record.job_id or record.scheduler_id, done)


def _as_list(payloads) -> list[bytes]:
    if isinstance(payloads, (bytes, bytearray)):
        return [bytes(payloads)]
    return list(payloads or [])
