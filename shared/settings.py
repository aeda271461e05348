"""podq's settings: documented dataclasses built once from ``PODQ_`` variables.

Each section's field ``name`` is read from ``PODQ_<SECTION>_<NAME>`` (upper case),
e.g. ``PODQ_REDIS_URL`` or ``PODQ_WATCHER_NAMESPACES``. Entry points call
:func:`load_settings` once and pass the result (or a section of it) down; no
module reads the environment on its own. docs/operations.md lists every variable.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, get_type_hints

from .clusters import Cluster, Route, load_clusters, parse_routes
from .errors import SettingsError


@dataclass(frozen=True, kw_only=True)
class RedisSettings:
    url: str | None = None
    """Redis/Valkey URL: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), or the primary
    named by Sentinels: ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master>[/db]``
    (``rediss+sentinel://``: TLS to the Sentinels and the primary). Unset: podq starts its embedded server."""
    tls_ca_file: str | None = None
    """CA certificates (PEM) that sign the server's TLS certificate; unset: the system's CAs."""
    tls_cert_file: str | None = None
    """Client certificate (PEM) for a server that requires one (mutual TLS); goes with ``tls_key_file``."""
    tls_key_file: str | None = None
    """The client certificate's private key (PEM)."""
    tls_check_hostname: bool = True
    """Check that the server's TLS certificate names the host of the URL."""
    wait_replicas: int = 0
    """Replicas that must hold the writes that have to survive a failover (accepted jobs, ledger
    transitions, results) before podq goes on (Redis ``WAIT``); 0: do not wait (asynchronous replication)."""
    wait_timeout: float = 1.0
    """Seconds one ``WAIT`` may take; past it podq goes on and logs how many replicas acknowledged."""
    sentinel_password: str | None = None
    """Password of the Sentinels themselves, if they require one (the URL's password is the primary's)."""
    data_dir: str | None = None
    """Where the embedded server keeps its AOF; unset: a fresh temporary directory."""
    ledger_ttl: int = 7 * 24 * 3600
    """Seconds a finished job's ledger entry is kept after its terminal result (it answers
    `podq job status` and turns a resubmission of the same try away; compacted to a few hundred bytes
    when the job ends, docs/scaling.md); 0 keeps it forever."""
    socket_timeout: float = 10.0
    """Seconds a Redis call may take before it fails (blocking reads add their own block time)."""


@dataclass(frozen=True, kw_only=True)
class KubeSettings:
    kubeconfig: str | None = None
    """Path of a kubeconfig. Unset and not in a cluster: the embedded stack starts kubesim."""
    context: str | None = None
    """kubeconfig context to use; unset: the current context."""
    in_cluster: bool = False
    """Use the pod's service account instead of a kubeconfig."""
    namespace: str = "default"
    """Namespace for jobs that name none."""
    request_timeout: float = 30.0
    """Seconds any single Kubernetes API request may take."""
    cluster: str = "default"
    """The name of the cell's default cluster (the one the other ``PODQ_KUBE_*`` settings reach): it
    names the cluster's shared create budget in Redis (``podq:budget:<cluster>``), which every worker
    creating there shares, and jobs routed nowhere else go there."""
    clusters: tuple[str, ...] = ()
    """Further clusters this cell creates pods in, by name; each takes the cell's settings except where
    ``PODQ_CLUSTER_<NAME>_<SETTING>`` says otherwise (docs/operations.md, "Clusters")."""
    routes: tuple[str, ...] = ()
    """Routing rules for jobs that name no cluster, first match wins: ``namespace:<ns>=<cluster>``,
    ``scheduler:<id>=<cluster>``, ``template:<name>=<cluster>`` (a value ending in ``*`` is a prefix);
    no match: the default cluster."""


@dataclass(frozen=True, kw_only=True)
class IntakeSettings:
    batch_size: int = 200
    """Stream entries intake reads per XREADGROUP call."""
    block_ms: int = 1000
    """How long one XREADGROUP blocks waiting for new entries."""
    read_ahead: int = 50_000
    """Job entries intake reads ahead of what it admits, so each batch it admits takes from every
    scheduler in turn: another scheduler's burst of up to about this many jobs does not hold a
    scheduler's jobs behind it (about 1.3 KB of intake's memory per entry read ahead)."""
    jobs_per_message: int = 32
    """Jobs packed into one Celery message at most."""
    consumer: str | None = None
    """Stable consumer name in intake's group; unset: derived from the host name."""
    templates_dir: str | None = None
    """Directory of named pod templates (``<name>.yaml``); unset: only the default template."""
    namespaces: tuple[str, ...] = ()
    """Namespaces jobs may use; empty: only ``PODQ_KUBE_NAMESPACE``."""
    redispatch_after: float = 5.0
    """Seconds a dispatched job may go without a live delivery (and with the Celery queue
    empty) before intake pushes it again: a message can vanish with a Redis crash or failover
    (a BRPOP whose reply died with the primary). The ledger's claim lease absorbs the duplicate
    if the first message was not lost after all."""
    max_record_bytes: int = 256 * 1024
    """Largest job or control record intake admits, in msgpack bytes (the protocol's ceiling is 256 KiB)."""
    pod_policy: bool = True
    """Enforce the default pod policy (no privileged containers, privilege escalation, hostPath
    volumes, hostNetwork/hostPID/hostIPC) on ``pod_override`` and on named templates."""
    fair_share: bool = True
    """While the cluster's create budget is full, hold admitted jobs in one waiting line per scheduler
    and release them by weighted fair share, each line in priority order (docs/scaling.md); false:
    every admitted job goes to the Celery queue at once (first come, first served)."""
    scheduler_weights: tuple[str, ...] = ()
    """Shares of the create capacity: ``<scheduler id>=<weight>`` or ``<id prefix>*=<weight>``, comma
    separated (an exact id wins, then the longest prefix); unlisted schedulers weigh 1."""
    scheduler_max_in_flight: tuple[str, ...] = ()
    """Caps on a scheduler's jobs released from its waiting line and not yet ended (dispatched,
    being created, or with a live pod): ``<scheduler id>=<n>`` or ``<id prefix>*=<n>``; unlisted: no cap."""
    dispatch_ahead: float = 0.2
    """Seconds of the create budget (plus the API's create latency) intake keeps dispatched ahead of
    the workers while jobs wait: more rides out hiccups, less lets a job that arrives in another
    scheduler's line, or with a higher priority, go sooner."""
    dispatch_ahead_min: int = 16
    """Jobs intake keeps dispatched ahead of the workers at least, whatever the budget's rate."""


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    creates_in_flight: int = 64
    """Creates one worker process runs at once: the slots of its create pool (and of its connection
    pool to the API server), shared by every message it holds."""
    concurrency: int = 0
    """Celery threads per worker process, each holding one message until its jobs are done; 0: twice
    what it takes to fill ``PODQ_WORKER_CREATES_IN_FLIGHT`` with messages of
    ``PODQ_INTAKE_JOBS_PER_MESSAGE`` jobs, so that a message waiting for its slowest create never
    leaves a slot idle (docs/performance.md)."""
    visibility_timeout: float = 300.0
    """Seconds before an unacknowledged Celery message is redelivered (the last resort: a dead
    worker's messages come back after ``liveness_ttl``)."""
    liveness_ttl: float = 10.0
    """Seconds a worker's liveness record lives without renewal (renewed every quarter of it);
    the messages of a worker that stopped renewing go back to the queue within about 1.25 × this."""
    prefetch_multiplier: int = 1
    """Celery prefetch multiplier (messages reserved per thread)."""
    create_rate: float = 1000.0
    """Ceiling of the cluster's shared create budget, in pod creates per second across every worker.
    Below it the budget finds and follows what the API server accepts (429/Retry-After, server
    errors, latency; docs/scaling.md); 0: no budget at all (no limit, nothing adapts)."""
    create_rate_start: float = 100.0
    """The budget of a cluster nothing has measured yet (creates/s); it doubles every second of
    demand until the API server pushes back or the ceiling is reached."""
    create_burst: int = 50
    """Creates the shared budget allows at once after a quiet spell (never more than a quarter
    second's worth of its rate)."""
    retry_budget: float = 0.0
    """Seconds one delivery may spend retrying API errors; 0 or more than a third of the
    visibility timeout: a third of it. Longer waits go through the delayed set."""
    max_deliveries: int = 5
    """Poison guard: a job whose deliveries ended without a hand-off this often fails."""
    max_delays: int = 20
    """A job sent back through the delayed set this often for an API error fails with the last one (waits for
    create capacity do not count)."""
    image: str | None = None
    """Image of the ``base`` container, replacing the template's (a pod_override still wins)."""
    pod_mutation_hook: str | None = None
    """``module:function`` called with each pod (a dict) last, before it is created."""
    delete_on_success: bool = True
    """Completion policy: delete a succeeded job's pod (else label it done and keep it)."""
    delete_on_failure: bool = False
    """Completion policy: delete a failed or lost job's pod (else label it done and keep it)."""
    delete_options: str | None = None
    """JSON delete options for completion deletes, e.g. ``{"gracePeriodSeconds": 10}``."""


@dataclass(frozen=True, kw_only=True)
class WatcherSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty: ``PODQ_KUBE_NAMESPACE``; ``*``: all namespaces. When set, intake refuses jobs for other namespaces."""
    batch_size: int = 500
    """Events published per Lua call at most."""
    batch_linger: float = 0.002
    """Seconds the watcher waits for more events to publish with the first of a batch (while
    events keep coming): at thousands of pod changes a second one Lua call then publishes
    several, for at most this much added latency; 0: publish each arrival at once."""
    list_page_size: int = 500
    """Pods per page when the watcher lists (``limit``/``continue``)."""
    idle_limit: float = 90.0
    """Seconds a watch may stay silent (no event, no bookmark) before it is dropped and resumed."""
    server_timeout: int = 300
    """``timeoutSeconds`` asked of the API server per watch; the watch resumes from its position after."""
    connect_timeout: float = 10.0
    """Seconds to open a connection to the API server."""
    request_timeout: float = 60.0
    """Seconds a list page (or a single pod read) may take."""
    keepalive_idle: int = 30
    """TCP keepalive: seconds idle before the first probe on API connections."""
    keepalive_interval: int = 15
    """TCP keepalive: seconds between probes."""
    keepalive_count: int = 6
    """TCP keepalive: unanswered probes before the connection is dropped."""
    fatal_reasons: tuple[str, ...] = ("CreateContainerConfigError", "ErrImagePull", "CreateContainerError",
                                      "ImageInspectError", "InvalidImageName")
    """Container waiting reasons that fail a Pending pod at once (Airflow's default list)."""
    pending_deadline: float = 600.0
    """Seconds a pod may stay Pending before its job fails and the pod is revoked; 0 disables."""
    launch_retries: int = 1
    """Times a job's pod is created again when it ended before its main container started (evicted, preempted, node lost, deleted by something else, a fatal waiting reason), costing the task no try (Airflow's ``pod_launch_failure_retries``); 0 turns it off."""
    launch_retry_excluded_reasons: tuple[str, ...] = ("Error",)
    """Container reasons whose launch failures are not retried (Airflow's ``pod_launch_failure_excluded_container_reasons``)."""
    pod_events: bool = True
    """Watch the Kubernetes Events about podq's pods (RBAC: get, list, watch on ``events``): pending reasons from them, and the last ones in the failure details of a job that never ran."""
    failure_log_lines: int = 0
    """Lines of a failed pod's log put into its job's failure details (``log_tail``) when the failing container started (it terminated with an exit code): the last ones (at most 1000), read once when the failure is seen (RBAC: get on ``pods/log``); 0 reads none."""
    pending_reason_interval: float = 2.0
    """Seconds between two ``pending`` results of one pod when its pending reason changes; changes in between are coalesced (the latest one is published when the interval ends)."""
    lease_ttl: float = 10.0
    """Seconds a leader's lease lives without renewal; a standby takes over after at most this plus ``lease_poll``."""
    lease_poll: float = 1.0
    """Seconds between lease renewals (leader) and acquisition attempts (standby)."""
    reconcile_interval: float = 30.0
    """Seconds between reconciler passes over the ledger."""
    lost_after: float = 600.0
    """Seconds a job may stay accepted or dispatched without a pod, or live in a namespace no watcher leads, before the reconciler publishes lost."""
    stuck_after: float = 300.0
    """Seconds a job may stay accepted or dispatched without a pod before the reconciler counts it in ``podq_jobs_stuck`` (the PodqJobsStuck alert); keep it below ``lost_after``."""
    created_grace: float = 30.0
    """Seconds after creation before the reconciler may call a created job's missing pod lost."""
    max_crashes: int = 8
    """Crashes in a row after which a watch loop gives up and the watcher exits non-zero."""
    health_file: str | None = None
    """Where the watcher writes its health (read by ``--check``); unset: a per-scope file in the temp dir."""
    health_max_age: float = 30.0
    """``--check`` fails when the health file is older than this many seconds."""
    instance: str | None = None
    """This replica's name in the lease; unset: host name and process id."""


@dataclass(frozen=True, kw_only=True)
class ResultsSettings:
    block_ms: int = 1000
    """How long a consumer's XREADGROUP blocks."""
    batch_size: int = 100
    """Entries a consumer reads per call."""
    reclaim_idle_ms: int = 60_000
    """An entry delivered to a consumer and not acknowledged for this long is reclaimed
    (XAUTOCLAIM) by a live consumer of the same group; intake's groups use it too."""
    max_deliveries: int = 5
    """An entry found delivered more than this many times without an ack (XAUTOCLAIM counts)
    goes to the dead stream instead of being handled again (``podq:results:<scheduler_id>:dead``
    by podq's results consumer, ``podq:dead`` by intake); other consumers apply their own limit."""


@dataclass(frozen=True, kw_only=True)
class TrimSettings:
    interval: float = 30.0
    """Seconds between trimming passes (intake runs them)."""
    hard_cap: int = 1_000_000
    """Entries a stream may hold before its oldest entries are removed even if some group has
    not read or acknowledged them (an abandoned stream); each such removal is counted in
    ``podq:metrics`` field ``trim_unread:<stream>``."""


@dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    port: int = 9464
    """Port each service serves Prometheus metrics on (``/metrics``); -1: none. One port per process:
    services sharing a host need different ports (``podq up`` assigns them)."""
    address: str = "0.0.0.0"
    """Address the metrics server binds (``127.0.0.1`` to keep it to the host)."""


SECTION = "section"  # metadata of Settings' fields built from a PODQ_<SECTION>_* section


@dataclass(frozen=True, kw_only=True)
class Settings:
    redis: RedisSettings = field(default_factory=RedisSettings)
    kube: KubeSettings = field(default_factory=KubeSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    watcher: WatcherSettings = field(default_factory=WatcherSettings)
    results: ResultsSettings = field(default_factory=ResultsSettings)
    trim: TrimSettings = field(default_factory=TrimSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    clusters: tuple[Cluster, ...] = field(default=(), metadata={SECTION: False})
    """Every cluster of the cell, the default first (from ``PODQ_KUBE_CLUSTER(S)`` and ``PODQ_CLUSTER_*``)."""
    routes: tuple[Route, ...] = field(default=(), metadata={SECTION: False})
    """``PODQ_KUBE_ROUTES``, checked against the clusters."""


def sections() -> list[dataclasses.Field]:
    """The fields of :class:`Settings` that are ``PODQ_<SECTION>_*`` sections."""
    return [item for item in dataclasses.fields(Settings) if item.metadata.get(SECTION, True)]


def _convert(name: str, raw: str, kind: Any) -> Any:
    text = raw.strip()
    if kind in ("str | None", "str"):
        return text or None if kind == "str | None" else text
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    raise SettingsError(f"{name}: unsupported setting type {kind}")


def _load_section(cls: type, section: str, env: Mapping[str, str]) -> Any:
    values = {}
    for item in dataclasses.fields(cls):
        name = f"PODQ_{section}_{item.name}".upper()
        if name in env:
            values[item.name] = _convert(name, env[name], item.type)
    return cls(**values)


def load_redis_settings(env: Mapping[str, str] | None = None) -> RedisSettings:
    """The ``PODQ_REDIS_*`` settings alone, from ``env`` (default: ``os.environ``): what a client
    library reads without the services' other settings."""
    return _load_section(RedisSettings, "redis", os.environ if env is None else env)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``env`` (default: ``os.environ``); ``overrides`` replace whole sections."""
    env = os.environ if env is None else env
    built = {item.name: _load_section(get_type_hints(Settings)[item.name], item.name, env)
             for item in sections()}
    built.update(overrides)
    kube = built["kube"]
    if "clusters" not in built:
        built["clusters"] = load_clusters(env, default=kube.cluster, names=kube.clusters, convert=_convert)
    if "routes" not in built:
        built["routes"] = parse_routes(kube.routes, known={cluster.name for cluster in built["clusters"]}
                                       or {kube.cluster})
    return Settings(**built)
