"""Intake: the admission point between producers and the Celery workers.

It reads ``podq:jobs`` and ``podq:control`` with one consumer group, decodes and
checks every record, records admitted jobs in the ledger, pushes them to Celery
in batches (or, while the cluster's create budget is full, into their schedulers'
waiting lines, :mod:`.dispatcher`), and acknowledges the entries only after that
push (at-least-once).
A record it refuses goes to ``podq:dead`` with the reason and, when its
scheduler id and task key can be read, a ``failed`` result to its scheduler.
Its periodic chores (the delayed set, orphaned jobs, trimming) are
:mod:`.housekeeping`'s; :mod:`.main` runs both.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any, Callable


from podq.broker.control.operations import validate_control
from podq.broker.control.sender import ControlSender
from podq.broker.queue.envelopes import dispatch_routed
from podq.broker.store import keys, streams
from podq.broker.store.connection import Client
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import Publisher
from podq.broker.store.redelivery import Redelivery
from podq.broker.store.streams import default_consumer_name, ensure_group
from podq.shared import clusters, metrics, naming, tracing
from podq.shared.errors import DecodeError
from podq.shared.naming import derive_job_id, pod_name_for
from podq.shared.records import ControlRecord, FailureDetails, KubernetesJob, KubernetesWatch
from podq.shared.settings import Settings
from podq.shared.states import Source, State

from .admission import check_job
from .arrivals import Arrivals
from .dispatcher import Dispatcher

log = logging.getLogger(__name__)

# Entries one read takes at most, in batches: reading ahead of a burst quickly, without one huge reply.
READ_AHEAD_BATCHES = 10

# The fields a refusal reason may name (its label in podq_jobs_refused_total).
JOB_FIELDS = tuple(item.name for item in dataclasses.fields(KubernetesJob)) + ("task_key",)


@dataclasses.dataclass(frozen=True)
class Rejection:
    stream: str
    entry_id: str
    payload: bytes | None
    reason: str


class Intake:
    """One intake consumer. Stateless: run several, each with its own consumer name."""

    def __init__(self, *, client: Client, settings: Settings, consumer: str | None = None) -> None:
        self.client = client
        self.settings = settings
        self.consumer = consumer or settings.intake.consumer or default_consumer_name("intake")
        self.ledger = Ledger(client)
        # The in-flight set a dispatched job joins is its cluster's (as records hold it).
        self.ledgers = {cluster: Ledger(client, cluster=cluster) for cluster in clusters.as_recorded(settings)}
        self.publisher = Publisher(client, ledger_ttl=settings.redis.ledger_ttl)
        self.control = ControlSender(client, clusters=clusters.as_recorded(settings))
        # One dispatcher per cluster (as records hold it: None for the default): its budget, its lines.
        self.dispatchers = {cluster: Dispatcher(client=client, settings=clusters.settings_for(settings, cluster),
                                                queue=keys.celery_queue(cluster))
                            for cluster in clusters.as_recorded(settings)}
        self._known_schedulers: set[str] = set()
        # Entries another intake took and never acked are reclaimed; poison entries go dead.
        self.redelivery = Redelivery(client, group=keys.INTAKE_GROUP, consumer=self.consumer,
                                     idle_ms=settings.results.reclaim_idle_ms,
                                     max_deliveries=settings.results.max_deliveries,
                                     dead_stream=lambda _stream: keys.DEAD_STREAM,
                                     count=settings.intake.batch_size)
        self._backlog_done = False
        self.arrivals = Arrivals(limit=max(settings.intake.batch_size, settings.intake.read_ahead))

    def prepare(self) -> None:
        for stream in (keys.JOBS_STREAM, keys.CONTROL_STREAM):
            ensure_group(self.client, stream, keys.INTAKE_GROUP)

    def step(self, *, block_ms: int | None = None) -> int:
        """Read what has come (without waiting while jobs read ahead wait to be admitted) and admit
        one batch, taken from every scheduler's arrivals in turn; returns how many entries it handled."""
        entries = []
        if not self.arrivals and (not self._backlog_done or self.redelivery.due()):
            # After a restart, this consumer's own delivered-but-unacked entries come first. They are
            # looked for again whenever a reclaim is due: a read whose reply was lost (Redis killed
            # mid-reply; redis-py retries the command) leaves entries delivered to this consumer that
            # it never saw, and XAUTOCLAIM would only hand them back after the full idle time. Only
            # while nothing is read ahead: those entries are pending too, and this batch admits all
            # it reads.
            entries = self._read("0", block_ms=None, count=self.settings.intake.batch_size)
            self._backlog_done = not entries
            entries = self.redelivery.screen(entries)
        if not entries:
            entries = [entry for entry in self.redelivery.reclaim([keys.JOBS_STREAM, keys.CONTROL_STREAM])
                       if not self.arrivals.holds(entry[1])]
        if not entries:
            entries = self._read_ahead(self.settings.intake.block_ms if block_ms is None else block_ms)
        controls = [(entry_id, fields) for stream, entry_id, fields in entries if stream == keys.CONTROL_STREAM]
        for stream, entry_id, fields in entries:
            if stream == keys.JOBS_STREAM:
                self.arrivals.add(KubernetesJob.scheduler_of(streams.record_of(fields)) or "", (entry_id, fields))
        jobs = self.arrivals.take(self.settings.intake.batch_size)
        if jobs:
            self._handle_jobs(jobs)
        if controls:
            self._handle_controls(controls)
        return len(entries) + len(jobs)

    def _read_ahead(self, block_ms: int) -> list:
        """New entries, as many as have come (up to the read-ahead's room): reading is cheap beside
        admitting, so each batch admitted chooses among everything that waits. Blocks only while
        nothing is read ahead."""
        entries: list = []
        chunk = READ_AHEAD_BATCHES * self.settings.intake.batch_size
        while (room := self.arrivals.room - len(entries)) > 0:
            read = self._read(">", block_ms=None if self.arrivals or entries else block_ms, count=min(room, chunk))
            entries += read
            if len(read) < min(room, chunk):
                break
        return entries

    def _read(self, start: str, *, block_ms: int | None, count: int) -> list:
        return streams.read_group(self.client, group=keys.INTAKE_GROUP, consumer=self.consumer,
                                  streams={keys.JOBS_STREAM: start, keys.CONTROL_STREAM: start},
                                  count=count, block_ms=block_ms)

    @staticmethod
    def initialise_metrics() -> None:
        """Every refusal reason's series, at 0, from start-up (metrics.refusal_reason's values)."""
        metrics.initialise(metrics.JOBS_REFUSED, [*JOB_FIELDS, *metrics.REFUSAL_KINDS])

    def _screen(self, stream: str, entries: list[tuple[str, dict]], *, what: str,
                decode: Callable[[bytes], Any], check: Callable[[Any], "str | None"]):
        """Decode and check each entry; the records that pass, and a rejection for each that does not."""
        passed: list[Any] = []
        rejected: list[Rejection] = []
        for entry_id, fields in entries:
            payload = streams.record_of(fields)
            try:
                if payload is None:
                    raise DecodeError(f"entry: no 'record' field holding a msgpack {what}")
                record = decode(payload)
                reason = check(record)
            except DecodeError as exc:
                reason = str(exc)
            if reason:
                rejected.append(Rejection(stream, entry_id, payload, reason))
            else:
                passed.append(record)
        return passed, rejected

    def _handle_jobs(self, entries: list[tuple[str, dict]]) -> None:
        jobs, rejected = self._screen(keys.JOBS_STREAM, entries, what="job", decode=KubernetesJob.decode,
                                      check=lambda job: check_job(job, self.settings))
        if jobs:
            default = self.settings.kube.namespace
            # A job without a trace context gets one here, so its pod, results and logs share a trace.
            # The cluster is decided here, once: the ledger keeps it and every delivery carries it.
            self._admit([dataclasses.replace(job, namespace=job.namespace or default,
                                             traceparent=job.traceparent or tracing.new_traceparent(),
                                             cluster=clusters.route(job, self.settings)[0])
                         for job in jobs])
        self._reject(rejected)
        streams.ack(self.client, keys.JOBS_STREAM, keys.INTAKE_GROUP, [entry_id for entry_id, _ in entries])

    def _admit(self, jobs: list[KubernetesJob]) -> None:
        self._ensure_results_groups({job.scheduler_id for job in jobs})
        records = [job.encode() for job in jobs]  # once: the ledger keeps it, the message carries it
        states = self.ledger.accept_many([(job, pod_name_for(job.job_id, job.key)) for job in jobs], records=records)
        # "new" jobs, and jobs still "accepted" (an intake died before pushing them), go out; the
        # latter as the ledger recorded them (the routing may have changed since).
        todo = [(job, record) for job, record, state in zip(jobs, records, states) if state == "new"]
        todo += self._recorded([job.job_id for job, state in zip(jobs, states) if state == "accepted"])
        metrics.JOBS_ACCEPTED.inc(sum(1 for state in states if state == "new"))
        for job, state in zip(jobs, states):
            if state not in ("new", "accepted"):
                with tracing.about_job(job.job_id, job.traceparent):
                    log.info("job %s (%s) already %s; not dispatched again", job.job_id, job.key, state)
        if not todo:
            return
        todo = self._hold_waiting(todo)
        if not todo:
            return
        dispatch_routed(self.client, [(job.cluster, record) for job, record in todo],
                        per_message=self.settings.intake.jobs_per_message)
        by_cluster: dict[str | None, list[str]] = {}
        for job, _ in todo:
            by_cluster.setdefault(job.cluster, []).append(job.job_id)
        for cluster, job_ids in by_cluster.items():
            self.ledgers.get(cluster, self.ledger).mark_dispatched(
                job_ids, orphaned_after=self.settings.intake.redispatch_after)
        metrics.JOBS_DISPATCHED.inc(len(todo))
        log.debug("dispatched %d jobs", len(todo))

    def _hold_waiting(self, todo: list[tuple[KubernetesJob, bytes]]) -> list[tuple[KubernetesJob, bytes]]:
        """Put in their waiting lines the jobs whose cluster's create budget is full (or has jobs
        waiting already); returns the rest, to dispatch now."""
        by_cluster: dict[str | None, list[KubernetesJob]] = {}
        for job, _ in todo:
            by_cluster.setdefault(job.cluster, []).append(job)
        held: set[str] = set()
        for cluster, jobs in by_cluster.items():
            dispatcher = self.dispatchers.get(cluster)
            if dispatcher is not None and not dispatcher.direct(jobs):
                dispatcher.hold(jobs)
                held.update(job.job_id for job in jobs)
        return [item for item in todo if item[0].job_id not in held] if held else todo

    def dispatch_waiting(self) -> int:
        """One step of every cluster's dispatcher (the ``intake-dispatch`` loop); jobs released."""
        return sum(dispatcher.step() for dispatcher in self.dispatchers.values())

    def _recorded(self, job_ids: list[str]) -> list[tuple[KubernetesJob, bytes]]:
        """The jobs and records the ledger holds for ``job_ids``."""
        if not job_ids:
            return []
        entries = self.ledger.entries(job_ids, fields=("job",))
        return [(entry.job, entry.job.encode()) for entry in entries.values() if entry.job is not None]

    def _ensure_results_groups(self, scheduler_ids: set[str]) -> None:
        new = scheduler_ids - self._known_schedulers
        if new:
            streams.ensure_results_groups(self.client, sorted(new))
            self._known_schedulers |= new

    def _handle_controls(self, entries: list[tuple[str, dict]]) -> None:
        records, rejected = self._screen(keys.CONTROL_STREAM, entries, what="control record",
                                         decode=ControlRecord.decode,
                                         check=lambda record: validate_control(record, self.ledger))
        self.control.send(records)
        for record in records:
            metrics.CONTROL_RECORDS.labels(record.op.value, "dispatched").inc()
        if rejected:
            metrics.CONTROL_RECORDS.labels("unknown", "refused").inc(len(rejected))
        self._reject(rejected, publish_failure=False)
        streams.ack(self.client, keys.CONTROL_STREAM, keys.INTAKE_GROUP, [entry_id for entry_id, _ in entries])

    def _reject(self, rejected: list[Rejection], *, publish_failure: bool = True) -> None:
        if not rejected:
            return
        for item in rejected:
            with about_refused(item):
                log.warning("rejected %s entry %s: %s", item.stream, item.entry_id, item.reason)
            if item.stream == keys.JOBS_STREAM:
                metrics.JOBS_REFUSED.labels(metrics.refusal_reason(item.reason, JOB_FIELDS)).inc()
        streams.dead_letter(self.client, [(keys.DEAD_STREAM, {keys.RECORD_FIELD: item.payload or b"",
                                                               "reason": item.reason, "stream": item.stream,
                                                               "entry_id": item.entry_id, "at": repr(time.time())})
                                          for item in rejected], group=keys.INTAKE_GROUP)
        if publish_failure:
            failures = [result for item in rejected if (result := rejection_result(item)) is not None]
            # The ledger records each as ended, except a refused duplicate of a job it admitted
            # (that job must not end); the rest get the refusal as their one terminal result.
            recorded = self.ledger.refuse([(result.job_id, result.scheduler_id, result.failure_details.message)
                                           for result in failures])
            failures = [result for result, new in zip(failures, recorded) if new]
            if failures:
                self.publisher.publish(failures)


def about_refused(item: Rejection) -> contextlib.AbstractContextManager:
    """Log lines about a refused job record carry its job_id and trace id, as far as they can be read."""
    identity = KubernetesJob.identity(item.payload) if item.payload and item.stream == keys.JOBS_STREAM else None
    if identity is None:
        return contextlib.nullcontext()
    return tracing.about_job(derive_job_id(*identity), KubernetesJob.traceparent_of(item.payload))


def rejection_result(item: Rejection) -> KubernetesWatch | None:
    """A ``failed`` result for a refused job record whose scheduler id and task key can be read.

    Whatever else is wrong (a bad string in ``command``, a non-string key in ``pod_override``,
    a duplicate key elsewhere), see :meth:`KubernetesJob.identity`.
    """
    identity = KubernetesJob.identity(item.payload) if item.payload else None
    if identity is None:
        return None
    scheduler_id, key = identity
    # Like every result about a job, it carries the job's trace context when the record has a valid one.
    traceparent = KubernetesJob.traceparent_of(item.payload)
    return KubernetesWatch.build(job_id=derive_job_id(scheduler_id, key), scheduler_id=scheduler_id, key=key,
                                 source=Source.INTAKE, state=State.FAILED,
                                 annotations={naming.TRACEPARENT: traceparent} if traceparent else None,
                                 failure_details=FailureDetails(reason="Rejected", message=item.reason))
