"""Every Redis key, stream and group name podq uses, in one place (Celery task names: :mod:`podq.broker.queue.envelopes`)."""
from __future__ import annotations

PREFIX = "podq"

JOBS_STREAM = f"{PREFIX}:jobs"
CONTROL_STREAM = f"{PREFIX}:control"
DEAD_STREAM = f"{PREFIX}:dead"
INTAKE_GROUP = "intake"
RESULTS_GROUP = "scheduler"
SCHEDULERS_SET = f"{PREFIX}:schedulers"
DELAYED_ZSET = f"{PREFIX}:delayed"
INFLIGHT_ZSET = f"{PREFIX}:inflight"
WATCHER_SCOPES_SET = f"{PREFIX}:watcher:scopes"  # every scope a watcher ever led (for status and gauges)
# Every cluster that has a create budget or waiting lines (for status and the gauges).
CLUSTERS_SET = f"{PREFIX}:clusters"
# Worker liveness: worker id -> server time its record lapses; worker id -> delivery tags it holds.
WORKERS_ZSET = f"{PREFIX}:workers"
WORKER_DELIVERIES = f"{PREFIX}:workers:deliveries"
# Intake and watcher processes' liveness records: instance -> server time its record lapses.
LIVE_PREFIX = f"{PREFIX}:live"
# Counters podq keeps in Redis (hash fields, e.g. ``trim_unread:<stream>``).
METRICS_KEY = f"{PREFIX}:metrics"

# The Celery queue of the default cluster: kombu keeps it as a Redis list of this name.
CELERY_QUEUE = "podq.pods"
# kombu's Redis transport: delivered-but-unacknowledged messages and their delivery times.
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"

# The field of a stream entry that holds the msgpack record.
RECORD_FIELD = "record"


def job_key(job_id: str) -> str:
    """The ledger hash of one job."""
    return f"{PREFIX}:job:{job_id}"


def celery_queue(cluster: str | None) -> str:
    """The Celery queue of a cluster's creates and control tasks (None: the cell's default cluster).

    One queue per cluster, so that jobs for a cluster that does not answer wait in its own queue
    and never in front of another cluster's (docs/scaling.md, "Clusters").
    """
    return CELERY_QUEUE if cluster is None else f"{CELERY_QUEUE}.{cluster}"


def inflight_key(cluster: str | None) -> str:
    """A cluster's in-flight set (job id -> time after which it counts as orphaned; None: the default
    cluster's, ``podq:inflight``): each cluster's own, so one cluster's jobs stuck in flight never take
    another's room in its dispatch window."""
    return INFLIGHT_ZSET if cluster is None else f"{INFLIGHT_ZSET}:{cluster}"


def delayed_key(cluster: str | None) -> str:
    """A cluster's delayed set (None: the default cluster's, ``podq:delayed``)."""
    return DELAYED_ZSET if cluster is None else f"{DELAYED_ZSET}:{cluster}"


def create_budget_key(cluster: str) -> str:
    """One cluster's shared create budget: its reservations' clock and its controller's state."""
    return f"{PREFIX}:budget:{cluster}"


def waiting_key(cluster: str) -> str:
    """The schedulers with jobs waiting for ``cluster``'s create capacity: scheduler -> pass (fair share)."""
    return f"{PREFIX}:waiting:{cluster}"


def waiting_line_key(cluster: str, scheduler_id: str) -> str:
    """One scheduler's waiting line for ``cluster``: ``<seq>:<job_id>`` scored by minus the job's priority."""
    return f"{PREFIX}:waiting:{cluster}:line:{scheduler_id}"


def waiting_seq_key(cluster: str) -> str:
    """The counter that orders equal priorities in ``cluster``'s waiting lines (first come, first out)."""
    return f"{PREFIX}:waiting:{cluster}:seq"


def results_stream(scheduler_id: str) -> str:
    """The results stream of one scheduler."""
    return f"{PREFIX}:results:{scheduler_id}"


def results_dead_stream(scheduler_id: str) -> str:
    """Where results delivered too many times to a scheduler's group end up."""
    return f"{PREFIX}:results:{scheduler_id}:dead"


def scheduler_jobs_key(scheduler_id: str) -> str:
    """The set of job ids a scheduler owns (used by adoption and the reconciler)."""
    return f"{PREFIX}:scheduler:{scheduler_id}:jobs"


def watcher_key(scope: str, part: str) -> str:
    """A watcher's key for ``scope`` (``rv``, ``states``, ``lease``, ``fence``, ``alive``)."""
    return f"{PREFIX}:watcher:{scope}:{part}"


def liveness_key(role: str) -> str:
    """Where the processes of ``role`` (worker, intake, watcher) keep their liveness records."""
    return WORKERS_ZSET if role == "worker" else f"{LIVE_PREFIX}:{role}"


def adopt_pending_key(old_scheduler_id: str, new_scheduler_id: str) -> str:
    """Jobs of an adoption whose pods still carry the old scheduler's label and annotation."""
    return f"{PREFIX}:adopt:{old_scheduler_id}:{new_scheduler_id}:pending"


def adopt_passes_key(old_scheduler_id: str, new_scheduler_id: str) -> str:
    """How many patch passes an adoption has made (it gives up after a bound)."""
    return f"{PREFIX}:adopt:{old_scheduler_id}:{new_scheduler_id}:passes"


def trim_unread_metric(stream: str) -> str:
    """The ``podq:metrics`` field counting entries trimmed from ``stream`` before every group acked them."""
    return f"trim_unread:{stream}"
