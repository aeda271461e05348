"""What a worker process holds for its tasks: settings, broker verbs, the API, the pool."""
from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.ledger import Ledger
from podq.broker.store.liveness import Liveness
from podq.broker.store.publish import Publisher
from podq.broker.store.ratelimit import CreateBudget
from podq.shared import metrics
from podq.shared.clusters import settings_for
from podq.shared.errors import SettingsError
from podq.shared.pods.templates import TemplateStore
from podq.shared.settings import Settings

from .budget import BudgetFeedback, Law
from .errors import KNOWN_STATUSES
from .hook import load_hook
from .liveness import Heartbeat, worker_id
from .kube import Kube, open_kube
from .podspec import MutationHook
from .policy import create_timeout, retry_budget
from .templates import template_store

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Runtime:
    """One per cluster a worker process serves; every field is safe to share between threads.

    A process serving several clusters (:func:`build_runtimes`) holds one per cluster: each with
    that cluster's settings, API client, create budget and create pool, all sharing the process's
    Redis client and liveness record.
    """

    settings: Settings
    client: Any  # redis.Redis, opened by podq.broker.store.connection (workers/ never import redis)
    kube: Kube
    ledger: Ledger
    publisher: Publisher
    limiter: CreateBudget
    feedback: BudgetFeedback
    """What this process's creates met, reported to the cluster's budget."""
    templates: TemplateStore
    hook: MutationHook | None
    executor: ThreadPoolExecutor
    budget: float
    create_timeout: float
    delete_options: dict = field(default_factory=dict)
    # The process's liveness record; claims are backed by it only while it runs (``podq worker`` starts it).
    heartbeat: Heartbeat | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the worker begins a warm shutdown (SIGTERM): creates still running finish, and
    one that would wait to retry hands its job back through the delayed set instead."""
    cluster: str | None = None
    """The cluster this runtime creates in, as records hold it (None: the cell's default)."""
    borrowed: bool = False
    """True for a further cluster's runtime: the Redis client and the heartbeat are another's."""

    def close(self) -> None:
        if not self.borrowed and self.heartbeat is not None and self.heartbeat.running:
            self.heartbeat.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.kube.close()
        if not self.borrowed:
            self.client.close()


# The adapter's methods and the API verbs they count as (podq_kube_requests_total).
WORKER_VERBS = {"create_pod": "create", "read_pod": "get", "patch_pod": "patch", "delete_pod": "delete"}


def creates_in_flight(settings: Settings) -> int:
    """Creates one process runs at once (``PODQ_WORKER_CREATES_IN_FLIGHT``); raises SettingsError below 1."""
    if settings.worker.creates_in_flight < 1:
        raise SettingsError(f"PODQ_WORKER_CREATES_IN_FLIGHT must be at least 1, got {settings.worker.creates_in_flight}")
    return settings.worker.creates_in_flight


def message_threads(settings: Settings) -> int:
    """Celery threads per process: ``PODQ_WORKER_CONCURRENCY``, or enough messages to fill the create slots twice.

    A message holds its thread until its slowest create answers; with twice the slots' worth of
    jobs held, the slots a finished job frees are taken by the next message's jobs at once.
    """
    if settings.worker.concurrency < 0:
        raise SettingsError(f"PODQ_WORKER_CONCURRENCY must be 0 (derived) or more, got {settings.worker.concurrency}")
    if settings.worker.concurrency:
        return settings.worker.concurrency
    return max(2, -(-2 * creates_in_flight(settings) // max(1, settings.intake.jobs_per_message)))


def create_budget(client, settings: Settings) -> CreateBudget:
    """The cluster's shared create budget (``PODQ_KUBE_CLUSTER``); raises SettingsError on a bad rate."""
    worker = settings.worker
    if worker.create_rate < 0 or (worker.create_rate > 0 and worker.create_rate_start <= 0):
        raise SettingsError("PODQ_WORKER_CREATE_RATE must be 0 (no budget) or more, and PODQ_WORKER_CREATE_RATE_START "
                            f"above 0; got {worker.create_rate} and {worker.create_rate_start}")
    return CreateBudget(client, cluster=settings.kube.cluster, ceiling=worker.create_rate,
                        start=worker.create_rate_start, burst=worker.create_burst)


def budget_law(settings: Settings) -> Law:
    """The budget controller's constants for these settings."""
    ceiling = settings.worker.create_rate
    return Law(ceiling=ceiling, start=min(settings.worker.create_rate_start, ceiling) if ceiling > 0 else 0.0,
               floor=min(1.0, ceiling))


def build_runtimes(settings: Settings, clusters: Sequence[str | None], *, worker: str | None = None,
                   kubes: Mapping[str | None, Kube] | None = None) -> dict[str | None, Runtime]:
    """A runtime per cluster (as records hold them: None for the default), the first one owning the
    process's Redis client and liveness record; raises SettingsError on bad settings or an unknown cluster."""
    if not clusters:
        raise SettingsError("a worker needs at least one cluster to create pods in")
    kubes = kubes or {}
    first, *others = clusters
    primary = build_runtime(settings_for(settings, first), kube=kubes.get(first), worker=worker, cluster=first)
    if primary.heartbeat is not None:
        primary.heartbeat.queues = [keys.celery_queue(cluster) for cluster in clusters]
    runtimes = {first: primary}
    try:
        for cluster in others:
            own = settings_for(settings, cluster)
            in_flight = creates_in_flight(own)
            kube = kubes.get(cluster) or open_kube(own.kube, pool_size=in_flight)
            limiter = create_budget(primary.client, own)
            runtimes[cluster] = dataclasses.replace(
                primary, settings=own, kube=_metered(kube, own.kube.cluster), limiter=limiter,
                ledger=Ledger(primary.client, cluster=cluster),
                publisher=Publisher(primary.client, ledger_ttl=own.redis.ledger_ttl, cluster=cluster),
                feedback=BudgetFeedback(limiter, budget_law(own)),
                executor=ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix=f"podq-create-{cluster}"),
                create_timeout=create_timeout(request_timeout=own.kube.request_timeout, budget=primary.budget),
                stopping=primary.stopping, cluster=cluster, borrowed=True)
    except Exception:
        for runtime in runtimes.values():
            runtime.close()
        raise
    return runtimes


def _metered(kube: Kube, cluster: str):
    return metrics.Metered(kube, WORKER_VERBS, ok_code=lambda verb: "201" if verb == "create" else "200",
                           codes=KNOWN_STATUSES, cluster=cluster)


def build_runtime(settings: Settings, *, kube: Kube | None = None, worker: str | None = None,
                  cluster: str | None = None) -> Runtime:
    """Open the connections a worker process needs; raises SettingsError on bad settings.

    ``worker``: the process's worker id for its liveness record (not started here); ``cluster``: the
    cluster of ``settings`` as records hold it (None: the default).
    """
    import json

    from podq.broker.control.operations import normalize_delete_options

    if not settings.redis.url:
        raise SettingsError("PODQ_REDIS_URL is not set: a worker needs the broker's Redis")
    try:
        delete_options = normalize_delete_options(json.loads(settings.worker.delete_options or "{}"))
    except (ValueError, AttributeError) as exc:
        raise SettingsError(f"PODQ_WORKER_DELETE_OPTIONS: {exc}") from None
    in_flight = creates_in_flight(settings)
    budget = retry_budget(settings.worker)
    if kube is None:
        kube = open_kube(settings.kube, pool_size=in_flight)
    kube = _metered(kube, settings.kube.cluster)
    client = connect(settings.redis.url, settings=settings.redis)
    limiter = create_budget(client, settings)
    return Runtime(settings=settings, client=client, kube=kube, ledger=Ledger(client, cluster=cluster),
                   publisher=Publisher(client, ledger_ttl=settings.redis.ledger_ttl, cluster=cluster), cluster=cluster,
                   limiter=limiter, feedback=BudgetFeedback(limiter, budget_law(settings)),
                   templates=template_store(settings.intake.templates_dir), hook=load_hook(settings.worker.pod_mutation_hook),
                   executor=ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="podq-create"),
                   budget=budget, create_timeout=create_timeout(request_timeout=settings.kube.request_timeout, budget=budget),
                   delete_options=delete_options,
                   heartbeat=Heartbeat(Liveness(client, worker=worker or worker_id(), ttl=settings.worker.liveness_ttl)))
