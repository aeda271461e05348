"""Creating one job's pod, exactly once: the plain function behind ``podq.create_pod``.

Per job: the ledger claim decides whether to act at all; the poison guard ends a
job that keeps killing its worker; the pod is built; a slot is taken from the
cluster's shared create budget; the create is sent under the job's deterministic name and
its answer resolved (docs/pods.md, "Creating a pod"). Every way a job can end here
is an :class:`Outcome`; job-level failures become ``failed`` results, never exceptions.
A pod created (or found to be the job's own) comes back as :class:`Created`, and
:func:`mark_created` records all such pods of one message in the ledger in one call and
:func:`settle` gives each its outcome.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

from podq.broker.store.delayed import delay_job
from podq.broker.store.ledger import Claim, Lease
from podq.broker.store.ratelimit import PUSH_BACKS
from podq.shared import metrics, naming
from podq.shared.pods.templates import TemplateError
from podq.shared.records import FailureDetails, KubernetesJob, KubernetesWatch, PendingReason
from podq.shared.states import CREATABLE_STATES, LedgerState, Source, State

from .budget import ERROR, OK, THROTTLED
from .errors import (ApiTimeout, ConflictError, KubeApiError, NotFoundError, PodBuildError, ServerError,
                     TooManyRequests, TransientApiError, TransportError)
from .kube import PodRef
from .podspec import build_pod
from .policy import DELAY, FAIL, decide
from .runtime import Runtime

log = logging.getLogger(__name__)


# Why a job goes back through the delayed set (podq_jobs_delayed_total's cause label).
DELAY_CAUSES = ("budget", "rate_limit", "api_error", "shutdown")


def initialise_metrics(cluster: str = "default") -> None:
    """Every series of the workers' labelled counters, at 0, from start-up."""
    metrics.initialise(metrics.POD_CREATES, [cluster], [*(outcome.value for outcome in Outcome), "crashed"])
    metrics.initialise(metrics.JOBS_DELAYED, DELAY_CAUSES)
    metrics.initialise(metrics.BUDGET_CUTS, [cluster], PUSH_BACKS)


class Outcome(str, Enum):
    CREATED = "created"            # we created it, or found our own pod under its name
    SKIPPED = "skipped"            # the ledger says there is nothing to do
    FAILED = "failed"              # a failed result was published
    DELAYED = "delayed"            # back through the broker's delayed set
    UNDONE = "undone"              # created after a revoke or an end: the pod was removed again


@dataclass(frozen=True)
class Created:
    """``job``'s pod exists (this delivery created it, or found its own): not yet in the ledger."""

    job: KubernetesJob
    pod: PodRef


def owns(pod: PodRef, job: KubernetesJob) -> bool:
    """True when ``pod`` is ``job``'s pod (by podq's job-id annotation)."""
    return pod.annotations.get(naming.JOB_ID_KEY) == job.job_id


def create_job(job: KubernetesJob, payload: bytes, rt: Runtime, *, deadline: float,
               claim: Claim | None = None, lease: Lease | None = None, epoch: int = 0) -> Outcome | Created:
    """Create ``job``'s pod unless the ledger says otherwise; ``deadline`` bounds retries (monotonic).

    A pod that exists comes back as :class:`Created`, for the caller to record with
    :func:`mark_created` (with the other pods of its message).

    ``claim`` is the job's ledger claim when the caller already took it (a batch claims
    all its jobs in one round trip) with ``lease`` in the heartbeat's ``epoch``; otherwise
    it is taken here.
    """
    if claim is None or lease is None:
        epoch = rt.heartbeat.epoch if rt.heartbeat else 0
        lease = delivery_lease(rt)
        claim = rt.ledger.claim_job(job.job_id, lease)
    if claim.busy:
        log.info("job %s (%s): another delivery of it holds its claim; leaving it to that one", job.job_id, job.key)
        return Outcome.SKIPPED
    if claim.state not in CREATABLE_STATES:
        log.info("job %s (%s): ledger state %s, nothing to create", job.job_id, job.key,
                 claim.state.value if claim.state else "missing")
        return Outcome.SKIPPED
    owner = claim.owner or job.scheduler_id
    namespace = job.namespace or rt.settings.kube.namespace
    name = naming.pod_name_for(job.job_id, job.key, launch=claim.launch)
    limit = rt.settings.worker.max_deliveries
    if claim.deliveries > limit:
        return fail(rt, job, owner=owner, namespace=namespace, pod_name=name, reason="PoisonJob",
                    message=f"delivered {claim.deliveries} times without finishing (limit {limit}); "
                            "its worker died each time")
    try:
        pod = build_pod(job, template=rt.templates.get(job.pod_template), namespace=namespace, owner=owner,
                        image=rt.settings.worker.image, hook=rt.hook, launch=claim.launch)
    except (PodBuildError, TemplateError) as exc:
        return fail(rt, job, owner=owner, namespace=namespace, pod_name=name, reason=exc.reason, message=str(exc))
    if job.traceparent:
        pod["metadata"].setdefault("annotations", {})[naming.TRACEPARENT] = job.traceparent
    still_held = _claim_check(rt, job, lease, epoch)
    return _create(job, payload, rt, pod=pod, name=name, namespace=namespace, owner=owner, deadline=deadline,
                   still_held=still_held)


def delivery_lease(rt: Runtime) -> Lease:
    """A new delivery's lease: long enough for every create attempt its budget allows.

    A delivery never starts a create later than ``budget - create_timeout`` after it began,
    and a create ends by its timeout, so another delivery taking the job after the lease
    cannot overlap with this one's creates. With a running heartbeat the lease is also
    backed by the worker's liveness record: it is void once the record lapses (a dead
    worker's job is taken over in seconds), and the delivery checks before each create
    that it was not (:meth:`podq.workers.liveness.Heartbeat.may_create`).
    """
    worker = rt.heartbeat.worker if rt.heartbeat and rt.heartbeat.running else ""
    return Lease(token=uuid.uuid4().hex, seconds=rt.budget + rt.create_timeout + 1.0,
                 grace=rt.settings.worker.visibility_timeout, worker=worker)


def _claim_check(rt: Runtime, job: KubernetesJob, lease: Lease, epoch: int):
    """A callable telling, before each create attempt, whether this delivery still holds the job."""
    def still_held() -> bool:
        if not lease.worker or rt.heartbeat is None:
            return True
        if rt.heartbeat.may_create(job.job_id, lease.token, epoch=epoch):
            return True
        log.warning("job %s (%s): this worker's liveness record lapsed and its claim was taken over "
                    "(a pause or a Redis outage); leaving the job to the delivery that holds it", job.job_id, job.key)
        return False
    return still_held


def _create(job, payload, rt: Runtime, *, pod, name, namespace, owner, deadline,
            still_held) -> Outcome | Created:
    attempt = 0
    if deadline - time.monotonic() < rt.create_timeout:
        # The job waited for a create slot past the point where a create could still end within
        # this delivery's lease: another delivery may take the job after it, so this one must not start.
        log.info("job %s: no create slot within its delivery's budget; handing it back", job.job_id)
        return delay(rt, job, payload, wait=0.0, error=None, owner=owner, namespace=namespace, pod_name=name,
                     cause="budget")
    while True:
        reservation = rt.limiter.reserve(max_wait=deadline - time.monotonic() - rt.create_timeout)
        if not reservation.granted:
            log.info("job %s: create budget slot %.2f s away, delaying", job.job_id, reservation.wait)
            return delay(rt, job, payload, wait=reservation.wait, error=None, owner=owner, namespace=namespace,
                         pod_name=name, cause="rate_limit")
        log.debug("job %s: create slot %.6f (%.3f s away)", job.job_id, reservation.slot, reservation.wait)
        if reservation.wait > 0:
            metrics.RATE_LIMIT_WAIT.observe(reservation.wait)
            time.sleep(reservation.wait)
        if not still_held() or (attempt and not _still_creatable(rt, job)):
            return Outcome.SKIPPED
        try:
            return Created(job, send_create(rt, pod))
        except ConflictError as exc:
            error: KubeApiError = exc
            found = read_pod(rt, name, namespace)
            if found is not None:
                return resolve_existing(rt, job, found, owner=owner, namespace=namespace, pod_name=name, conflict=exc)
            # Gone again (or unreadable) between the create and the read: try once more.
            error = TransientApiError(status=409, reason=exc.reason, message=f"{exc.message}; then not readable")
        except (ApiTimeout, TransportError) as exc:
            # The create may have landed: the pod's name tells, never a guess.
            error = exc
            found = read_pod(rt, name, namespace)
            if found is not None:
                return resolve_existing(rt, job, found, owner=owner, namespace=namespace, pod_name=name, conflict=None)
        except KubeApiError as exc:
            error = exc
        attempt += 1
        decision = decide(error, attempt=attempt, remaining=deadline - time.monotonic() - rt.create_timeout)
        log.info("job %s: create attempt %d: %s -> %s %.2fs", job.job_id, attempt, error, decision.action,
                 decision.wait)
        if decision.action == FAIL:
            return fail(rt, job, owner=owner, namespace=namespace, pod_name=name, reason=error.reason,
                        message=error.message or str(error), status=error.status)
        if decision.action == DELAY:
            return delay(rt, job, payload, wait=decision.wait, error=error, owner=owner, namespace=namespace,
                         pod_name=name, cause="api_error")
        if rt.stopping.wait(decision.wait):
            log.info("job %s: worker shutting down; handing the job back instead of retrying here", job.job_id)
            return delay(rt, job, payload, wait=decision.wait, error=error, owner=owner, namespace=namespace,
                         pod_name=name, cause="shutdown")


def _still_creatable(rt: Runtime, job: KubernetesJob) -> bool:
    """Before a retried create: the job may have been revoked (or ended) while this delivery waited."""
    entry = rt.ledger.entries([job.job_id], fields=("state",)).get(job.job_id)
    if entry is not None and entry.state not in CREATABLE_STATES:
        log.info("job %s (%s): ledger state %s during create retries; not creating", job.job_id, job.key,
                 entry.state.value if entry.state else "missing")
        return False
    return True


def send_create(rt: Runtime, pod: dict) -> PodRef:
    """One create request; what it met (answer, push-back, latency) goes to the cluster's budget."""
    sent = time.monotonic()
    try:
        created = rt.kube.create_pod(pod, timeout=rt.create_timeout)
    except KubeApiError as exc:
        if isinstance(exc, TooManyRequests):
            rt.feedback.observe(THROTTLED, retry_after=exc.retry_after)
        elif isinstance(exc, (ServerError, TransportError)):
            rt.feedback.observe(ERROR)
        else:  # the server answered, about this pod (409, 403, 422, ...): it was not pushing back
            rt.feedback.observe(OK, latency=time.monotonic() - sent)
        raise
    rt.feedback.observe(OK, latency=time.monotonic() - sent)
    return created


def read_pod(rt: Runtime, name: str, namespace: str) -> PodRef | None:
    """The pod named ``name``, or None when it does not exist or cannot be read now."""
    try:
        return rt.kube.read_pod(name, namespace, timeout=rt.create_timeout)
    except NotFoundError:
        return None
    except KubeApiError as exc:
        log.info("pod %s/%s: read failed (%s); the create will be retried", namespace, name, exc)
        return None


def resolve_existing(rt: Runtime, job: KubernetesJob, pod: PodRef, *, owner: str, namespace: str, pod_name: str,
                     conflict: ConflictError | None) -> Outcome | Created:
    """A pod of our name exists: ours counts as created, another job's is a failure."""
    if owns(pod, job):
        return Created(job, pod)
    other = pod.annotations.get(naming.JOB_ID_KEY) or "no podq job"
    message = (f"pod {namespace}/{pod.name} already exists and belongs to {other}, not to job {job.job_id}")
    return fail(rt, job, owner=owner, namespace=namespace, pod_name=pod_name, reason="PodNameConflict",
                message=message, status=409)


def mark_created(rt: Runtime, created: Sequence[Created]) -> list[tuple[bool, str]]:
    """Record ``created`` pods in the ledger in one script call; per pod (moved, ledger state).

    Each pod's outcome then follows from its answer with :func:`settle`.
    """
    return rt.ledger.mark_created_many([(item.job.job_id, item.pod.uid) for item in created])


def settle(rt: Runtime, created: Created, moved: bool, state: str) -> Outcome:
    """A created pod's outcome from its ledger mark: kept, or removed again when the job ended without it."""
    job, pod = created.job, created.pod
    if moved or state == LedgerState.CREATED.value:
        log.debug("job %s: pod %s/%s created (uid %s)", job.job_id, pod.namespace, pod.name, pod.uid)
        return Outcome.CREATED
    if state == LedgerState.TERMINAL.value and ended_by(rt, job, pod):
        # The pod finished before its create's answer came back (a fast pod, a slow answer): its
        # own result ended the job, and the completion policy applies to it like to any other.
        log.info("job %s: pod %s/%s (uid %s) ended its job before the create's answer came back; keeping it",
                 job.job_id, pod.namespace, pod.name, pod.uid)
        return Outcome.CREATED
    # Revoked, or ended before this pod existed (or by another pod): the pod must not run.
    log.warning("job %s: ledger became %s while pod %s was created; removing the pod", job.job_id, state, pod.name)
    from .control import remove_revoked_pod
    remove_revoked_pod(rt, pod.name, pod.namespace)
    return Outcome.UNDONE


def ended_by(rt: Runtime, job: KubernetesJob, pod: PodRef) -> bool:
    """True when ``pod`` itself ended the job: the terminal result recorded its uid (publish script)."""
    entry = rt.ledger.get(job.job_id)
    return entry is not None and entry.uid is not None and entry.uid == pod.uid


def delay(rt: Runtime, job: KubernetesJob, payload: bytes, *, wait: float, error: KubeApiError | None,
          owner: str, namespace: str, pod_name: str, cause: str) -> Outcome:
    """Hand the job to the delayed set; past ``max_delays`` retries of API errors it fails with the last one.

    A wait for create capacity (``error`` None: the budget had no slot in time, no worker slot came
    free) never counts toward ``max_delays``: the job waits for the cluster as long as it takes, the
    way a job in a waiting line does, instead of failing because the API server is busy.
    """
    metrics.JOBS_DELAYED.labels(cause).inc()
    delays = delay_job(rt.client, job_id=job.job_id, payload=payload, delay=wait,
                       grace=rt.settings.worker.visibility_timeout, cluster=rt.cluster, counts=error is not None)
    limit = rt.settings.worker.max_delays
    if error is not None and delays > limit:
        return fail(rt, job, owner=owner, namespace=namespace, pod_name=pod_name, reason=error.reason,
                    message=f"gave up after {limit} delayed retries: {error.message or error}",
                    status=error.status)
    log.info("job %s: delayed %.1f s (delay %d of %d)", job.job_id, wait, delays, limit)
    if error is not None:
        tell_waiting(rt, job, owner=owner, namespace=namespace, pod_name=pod_name, error=error, delays=delays)
    return Outcome.DELAYED


def tell_waiting(rt: Runtime, job: KubernetesJob, *, owner: str, namespace: str, pod_name: str,
                 error: KubeApiError, delays: int) -> None:
    """The scheduler learns why its job's pod is not created yet: a ``pending`` with reason
    ``FailedCreate`` and the API's answer (a quota, throttling, an unavailable server), each
    delay a later ``pending`` of its own (the publish script drops one equal to the last)."""
    message = f"{error.message or error} (HTTP {error.status})" if error.status else (error.message or str(error))
    result = KubernetesWatch.build(
        job_id=job.job_id, scheduler_id=owner, key=job.key, source=Source.WORKER, state=State.PENDING,
        pod_name=pod_name, namespace=namespace,
        annotations=job_annotations(job, owner), again=f"create-{delays}",
        pending_reason=PendingReason(reason="FailedCreate", message=f"Error creating: {message}"))
    rt.publisher.publish([result])


def job_annotations(job: KubernetesJob, owner: str) -> dict[str, str]:
    """The annotations a result about ``job`` carries, as its pod would: identity and trace context."""
    annotations = naming.pod_annotations(job_id=job.job_id, scheduler_id=owner, key=job.key)
    if job.traceparent:
        annotations[naming.TRACEPARENT] = job.traceparent
    return annotations


def fail(rt: Runtime, job: KubernetesJob, *, owner: str, namespace: str, pod_name: str, reason: str,
         message: str, status: int | None = None) -> Outcome:
    """Publish the job's ``failed`` result (through the publish script, like every result).

    In a cell of several clusters the message names the cluster (``cluster <name>: ...``)."""
    if status:
        message = f"{message} (HTTP {status})"
    if len(rt.settings.clusters) > 1:
        message = f"cluster {rt.settings.kube.cluster}: {message}"
    result = KubernetesWatch.build(
        job_id=job.job_id, scheduler_id=owner, key=job.key, source=Source.WORKER, state=State.FAILED,
        pod_name=pod_name, namespace=namespace,
        annotations=job_annotations(job, owner),
        failure_details=FailureDetails(reason=reason, message=message), cluster=rt.settings.kube.cluster)
    entry = rt.publisher.publish([result])[0]
    log.warning("job %s (%s): failed: %s: %s%s", job.job_id, job.key, reason, message,
                "" if entry else " (a terminal result was out already)")
    return Outcome.FAILED
