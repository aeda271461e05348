"""podq's metrics catalogue: every metric any podq service exports, defined here and nowhere else.

Names follow Prometheus conventions: the ``podq_`` prefix, ``_total`` on counters, base units
(``_seconds``), and labels whose values come from a small fixed set (a state, a verb, an HTTP
status code, an outcome) or from the operator's configuration (a watcher scope, a scheduler id),
never from a job. docs/operations.md lists them with their meaning (a test keeps the two equal).

Metrics live in one registry per process, :data:`REGISTRY`. Every podq service is one process
(``podq worker`` runs Celery's threads pool, never prefork), so its threads share the registry
and a scrape sees all of them; several processes on one host each serve their own port
(``PODQ_METRICS_PORT``; ``podq up`` gives each service its own), the "one port per process"
model, so nothing needs prometheus_client's multiprocess mode.

Which process reports what: intake the admission counters; intake and every watcher replica, every
few seconds, the gauges read from Redis (queue, in-flight, delayed, streams, dead letters, watcher
leadership, live processes, the ledger's exact totals), so losing either leaves them published; workers
the deliveries, creates, rate limit and their API calls; the watcher the watch, lease, reconciler and
latency figures and its API calls; every service its Redis round trip.

Counters are per process: each labelled series is created at start-up (:func:`initialise`), so the
first increment is a change from 0 that ``rate()`` and ``increase()`` see, and a process's counts since
its last scrape die with it. The exact totals are the ledger's (``podq_ledger_events``).
"""
from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from podq.shared.states import PROCESS_ROLES, TERMINAL_STATES, ControlOp, Source, State

log = logging.getLogger(__name__)

# No ``<counter>_created`` series: Prometheus does not use them, and they double a scrape's size.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

# API and Redis calls: from a millisecond to a request timeout.
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Job latencies: from a fraction of a second to many minutes.
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
    return Counter(name, doc, tuple(labels), registry=REGISTRY)


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
    return Gauge(name, doc, tuple(labels), registry=REGISTRY)


def _histogram(name: str, doc: str, labels: Iterable[str] = (), *, buckets=CALL_BUCKETS) -> Histogram:
    return Histogram(name, doc, tuple(labels), registry=REGISTRY, buckets=buckets)


# -- intake ----------------------------------------------------------------------------------------
JOBS_ACCEPTED = _counter("podq_jobs_accepted_total", "Jobs intake recorded in the ledger for the first time.")
JOBS_REFUSED = _counter("podq_jobs_refused_total",
                        "Job records intake refused (sent to podq:dead), by the field or rule that failed.",
                        ["reason"])
JOBS_DISPATCHED = _counter("podq_jobs_dispatched_total", "Jobs intake pushed to the Celery queue (new or resumed).")
JOBS_WAITED = _counter("podq_jobs_waited_total",
                       "Jobs intake put in a waiting line because the cluster's create budget was full.")
JOBS_REDISPATCHED = _counter("podq_jobs_redispatched_total",
                             "Dispatched jobs with no live delivery that intake pushed again (orphan sweep).")
CONTROL_RECORDS = _counter("podq_control_records_total", "Control records intake handled, by operation and outcome.",
                           ["op", "outcome"])

# -- read from Redis by intake every few seconds (the same figures `podq status` shows) ------------
CELERY_QUEUE_MESSAGES = _gauge("podq_celery_queue_messages",
                               "Celery messages waiting in every cluster's queue (podq.pods, podq.pods.<cluster>; "
                               "each holds up to PODQ_INTAKE_JOBS_PER_MESSAGE jobs).")
JOBS_IN_FLIGHT = _gauge("podq_jobs_in_flight", "Jobs dispatched and not yet created or ended (podq:inflight).")
DELAYED_JOBS = _gauge("podq_delayed_jobs", "Jobs waiting in the delayed set (API back-off or rate limit).")
JOBS_STREAM_LENGTH = _gauge("podq_jobs_stream_length", "Entries in podq:jobs.")
JOBS_STREAM_LAG = _gauge("podq_jobs_stream_lag", "Entries in podq:jobs not yet read by intake.")
JOBS_STREAM_PENDING = _gauge("podq_jobs_stream_pending", "Entries of podq:jobs read by intake and not acknowledged.")
DEAD_LETTERS = _gauge("podq_dead_letters", "Entries in podq:dead (refused records and poison entries).")
RESULTS_STREAM_LENGTH = _gauge("podq_results_stream_length", "Entries in a scheduler's results stream.",
                               ["scheduler"])
RESULTS_PENDING = _gauge("podq_results_pending",
                         "Results delivered to a scheduler's consumers and not acknowledged.", ["scheduler"])
RESULTS_LAG = _gauge("podq_results_lag", "Results not yet delivered to a scheduler's consumer group.", ["scheduler"])
RESULTS_OLDEST_PENDING = _gauge("podq_results_oldest_pending_age_seconds",
                                "Age of the oldest result delivered to a scheduler and not acknowledged.",
                                ["scheduler"])
RESULTS_DELIVERED = _gauge("podq_results_delivered",
                           "Results delivered to a scheduler's consumer group so far (Redis's entries-read); it stays "
                           "flat while the scheduler reads nothing.", ["scheduler"])
RESULTS_DEAD_LETTERS = _gauge("podq_results_dead_letters",
                              "Results a scheduler failed to handle too many times (its :dead stream).",
                              ["scheduler"])
WATCHER_SCOPE_LEASED = _gauge("podq_watcher_scope_leased",
                              "1 while a watcher replica leads the scope and renews its lease; 0 when none does, "
                              "from a few renewal periods after its leader stopped renewing.", ["scope"])
LIVE_PROCESSES = _gauge("podq_live_processes",
                        "Processes whose own liveness record in Redis has not lapsed, by role "
                        "(intake, worker, watcher).", ["role"])
LEDGER_EVENTS = _gauge("podq_ledger_events",
                       "Exact cluster-wide totals from Redis, each counted in the script that records the fact: "
                       "jobs accepted, dispatched, pods created, jobs ended by terminal state.", ["event"])
JOBS_WAITING = _gauge("podq_jobs_waiting",
                      "Jobs in a scheduler's waiting line for a cluster's create capacity.", ["cluster", "scheduler"])
CREATE_BUDGET = _gauge("podq_create_budget", "A cluster's shared create budget now, in creates per second.",
                       ["cluster"])
CREATE_BUDGET_PEAK = _gauge("podq_create_budget_peak",
                            "Creates per second the cluster's API server accepted when it last pushed back "
                            "(0: it never has).", ["cluster"])
CREATE_BUDGET_REASON = _gauge("podq_create_budget_reason",
                              "1 for the reason a cluster's create budget is what it is (slow start, recovering, "
                              "at peak, probing, ceiling, idle, throttled, server errors, latency), 0 for the others.",
                              ["cluster", "reason"])
CREATE_BUDGET_PAUSE = _gauge("podq_create_budget_pause_seconds",
                             "Seconds left of a Retry-After pause every worker of the cluster keeps (0: none).",
                             ["cluster"])

# -- workers ---------------------------------------------------------------------------------------
DELIVERIES = _counter("podq_deliveries_total", "Create deliveries that claimed their job in the ledger.")
REDELIVERIES = _counter("podq_redeliveries_total",
                        "Create deliveries of a job that had been delivered before (a retry, a lost worker).")
POD_CREATES = _counter("podq_pod_creates_total",
                       "Jobs a worker finished handling, by cluster and outcome: created, skipped (nothing to do), "
                       "failed (a failed result), delayed (handed back), undone (created after a revoke).",
                       ["cluster", "outcome"])
JOBS_DELAYED = _counter("podq_jobs_delayed_total", "Jobs handed back through the delayed set, by cause.", ["cause"])
RATE_LIMIT_WAIT = _histogram("podq_rate_limit_wait_seconds",
                             "Time a create waited for its slot of the cluster's shared create budget.",
                             buckets=JOB_BUCKETS)
BUDGET_CUTS = _counter("podq_create_budget_cuts_total",
                       "Times a worker cut its cluster's create budget, by cluster and push-back "
                       "(throttled: a 429; server errors; latency: the API server queueing).", ["cluster", "reason"])

# -- Kubernetes API calls (workers and watcher) ----------------------------------------------------
KUBE_REQUESTS = _counter("podq_kube_requests_total",
                         "Kubernetes API requests, by cluster, verb and HTTP status code (0: no answer).",
                         ["cluster", "verb", "code"])
KUBE_REQUEST_DURATION = _histogram("podq_kube_request_duration_seconds",
                                   "Kubernetes API request latency, by cluster and verb (watches: until the stream "
                                   "opens).", ["cluster", "verb"])

# -- watcher ---------------------------------------------------------------------------------------
WATCH_EVENTS = _counter("podq_watch_events_total", "Watch events read, by scope and event type.", ["scope", "type"])
WATCH_RELISTS = _counter("podq_watch_relists_total", "Full lists of a scope (start without a position, or after a 410).",
                         ["scope"])
WATCH_EXPIRED = _counter("podq_watch_expired_total", "410 Gone answers (resourceVersion too old), by scope.", ["scope"])
WATCH_RECONNECTS = _counter("podq_watch_reconnects_total", "Watches reopened from their position, by scope.",
                            ["scope"])
WATCHER_LEADER = _gauge("podq_watcher_leader", "1 while this replica holds the scope's lease.", ["scope"])
WATCHER_TAKEOVERS = _counter("podq_watcher_takeovers_total", "Times this replica became the scope's leader.", ["scope"])
WATCHER_FENCED = _counter("podq_watcher_fenced_batches_total",
                          "Publish batches refused because another replica held the lease.", ["scope"])
WATCHER_LAST_PROGRESS = _gauge("podq_watcher_last_progress_timestamp_seconds",
                               "Unix time of the scope's last progress (event, bookmark, list page).", ["scope"])
JOBS_STUCK = _gauge("podq_jobs_stuck",
                    "Jobs of the scope accepted or dispatched longer than PODQ_WATCHER_STUCK_AFTER with no pod "
                    "created, as the scope's leader's reconciler last counted them (0 on other replicas).", ["scope"])
LAUNCH_RETRIES = _counter("podq_launch_retries_total",
                          "Jobs whose pod ended before it started and that the watcher launched again (a new pod).")
RECONCILER_ENDINGS = _counter("podq_reconciler_endings_total",
                              "Jobs the reconciler ended (no pod found), by the state it gave them.", ["state"])

# -- results (every publisher) ---------------------------------------------------------------------
RESULTS_PUBLISHED = _counter("podq_results_published_total",
                             "Results that reached a results stream, by state and by the service that published them.",
                             ["state", "source"])
SUBMIT_TO_RUNNING = _histogram("podq_submit_to_running_seconds",
                               "From a job's submission (its submitted_at) to its running result.",
                               buckets=JOB_BUCKETS)
SUBMIT_TO_TERMINAL = _histogram("podq_submit_to_terminal_seconds",
                                "From a job's submission to its terminal result, by terminal state.", ["state"],
                                buckets=JOB_BUCKETS)

# -- every service -----------------------------------------------------------------------------------
REDIS_ROUNDTRIP = _histogram("podq_redis_roundtrip_seconds", "Round trip of a PING to Redis, measured every few seconds.")


def names() -> list[str]:
    """Every metric family name in the catalogue (counters with their ``_total``)."""
    found = []
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry's own index
        for family in collector.describe():
            found.append(f"{family.name}_total" if family.type == "counter" else family.name)
    return sorted(set(found))


def markdown_table() -> str:
    """The catalogue as docs/operations.md shows it (`python -m podq.shared.metrics` prints it)."""
    rows = ["| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]
    described = []
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry's own index
        for family in collector.describe():
            name = f"{family.name}_total" if family.type == "counter" else family.name
            labels = ", ".join(f"`{label}`" for label in getattr(collector, "_labelnames", ()))
            described.append((name, family.type, labels, family.documentation))
    for name, kind, labels, documentation in sorted(set(described)):
        rows.append(f"| `{name}` | {kind} | {labels} | {documentation} |")
    return "\n".join(rows)


# -- every labelled series from start-up -----------------------------------------------------------
def initialise(metric, *label_values: Iterable[str]) -> None:
    """Create ``metric``'s series for every combination of the given label values, at 0.

    A labelled series that appears only at its first increment has no earlier sample, so
    ``increase()`` and ``rate()`` never see that first value (Prometheus counts from the first
    sample it has); created at start-up, the series starts at 0 and every increment counts.
    """
    combos: list[tuple[str, ...]] = [()]
    for values in label_values:
        combos = [(*combo, str(value)) for combo in combos for value in values]
    for combo in combos:
        metric.labels(*combo)


def initialise_shared() -> None:
    """The series whose label values podq's own vocabulary fixes (states, sources, operations, roles)."""
    terminal = sorted(state.value for state in TERMINAL_STATES)
    initialise(RESULTS_PUBLISHED, [state.value for state in State], [source.value for source in Source])
    initialise(SUBMIT_TO_TERMINAL, terminal)
    initialise(RECONCILER_ENDINGS, terminal)
    initialise(CONTROL_RECORDS, [op.value for op in ControlOp], ["dispatched"])
    initialise(CONTROL_RECORDS, ["unknown"], ["refused"])
    initialise(LIVE_PROCESSES, PROCESS_ROLES)
    initialise(LEDGER_EVENTS, LEDGER_EVENT_NAMES)


# The events of podq_ledger_events: the ledger's totals (broker/store/counters.py), terminal states by name.
LEDGER_EVENT_NAMES = ("accepted", "dispatched", "created", *sorted(state.value for state in TERMINAL_STATES))


# -- refusal reasons: a bounded label from a free-text reason ---------------------------------------
# The refusal reasons that are not a job field.
REFUSAL_KINDS = ("too_large", "record", "entry")


def refusal_reason(reason: str, known_fields: Iterable[str]) -> str:
    """The field a refusal names (``job.namespace: ...`` → ``namespace``), ``too_large``, or ``record``."""
    head = reason.split(":", 1)[0].strip()
    if "byte limit" in reason:
        return "too_large"
    parts = head.split(".")
    if len(parts) >= 2 and parts[0] == "job" and parts[1].split("[")[0] in set(known_fields):
        return parts[1].split("[")[0]
    return "entry" if head == "entry" else "record"


# -- timing a client's calls ------------------------------------------------------------------------
class Metered:
    """Wraps an API adapter: each call of a named method counts in KUBE_REQUESTS and KUBE_REQUEST_DURATION.

    ``verbs`` maps method names to API verbs; any other attribute passes through. A failure's HTTP
    status is read from the exception's ``status`` attribute (podq's API errors carry it). ``cluster``
    names the cluster the adapter reaches (the ``cluster`` label).
    """

    def __init__(self, target: Any, verbs: Mapping[str, str], *, ok_code: Callable[[str], str] = lambda verb: "200",
                 codes: Iterable[int | str] = (), cluster: str = "default"):
        self._target = target
        self._cluster = cluster
        self._verbs = dict(verbs)
        self._ok_code = ok_code
        self._calls: dict[str, Callable[..., Any]] = {}  # method name -> its metered call, built once
        # Every verb's series from start-up: its success code, and ``codes`` (the failures the caller knows).
        for verb in set(self._verbs.values()):
            KUBE_REQUEST_DURATION.labels(cluster, verb)
            initialise(KUBE_REQUESTS, [cluster], [verb], {ok_code(verb), *map(str, codes)})

    def __getattr__(self, name: str) -> Any:
        metered = self._calls.get(name)
        if metered is not None:
            return metered
        attribute = getattr(self._target, name)
        verb = self._verbs.get(name)
        if verb is None or not callable(attribute):
            return attribute
        duration = KUBE_REQUEST_DURATION.labels(self._cluster, verb)
        succeeded = KUBE_REQUESTS.labels(self._cluster, verb, self._ok_code(verb))

        def call(*args, **kwargs):
            started = time.perf_counter()
            count = succeeded
            try:
                return attribute(*args, **kwargs)
            except Exception as exc:
                count = KUBE_REQUESTS.labels(self._cluster, verb, str(getattr(exc, "status", 0) or 0))
                raise
            finally:
                duration.observe(time.perf_counter() - started)
                count.inc()
        self._calls[name] = call
        return call


# -- serving ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class Served:
    address: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/metrics"


Health = Callable[[], "tuple[bool, str]"]
"""The process's own liveness: (healthy, why), answered on GET /healthz."""


class _IPv6Server(ThreadingWSGIServer):
    """For an IPv6 PODQ_METRICS_ADDRESS (``::``, ``::1``)."""
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


def _app(health: Health | None):
    """/metrics (and every other path, as prometheus_client serves them), and /healthz from ``health``."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/healthz":
            return metrics_app(environ, start_response)
        try:
            healthy, why = health() if health is not None else (True, "serving")
        except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer, not a dead server
            healthy, why = False, f"health check failed: {type(exc).__name__}: {exc}"
        start_response("200 OK" if healthy else "503 Service Unavailable",
                       [("Content-Type", "text/plain; charset=utf-8")])
        return [f"{'ok' if healthy else 'unhealthy'}: {why}\n".encode()]
    return app


def serve(*, address: str, port: int, service: str, health: Health | None = None) -> Served | None:
    """Serve :data:`REGISTRY` and GET /healthz (``health``) on ``address:port`` from a daemon thread;
    None when ``port`` is -1 (off).

    /healthz is what a Kubernetes liveness probe asks: the running process answers from its own state,
    with no new interpreter and no Redis call, so a Redis blip restarts nothing. A port that cannot be
    bound is logged and the service goes on without metrics: losing them must not stop pods from being
    created.
    """
    if port < 0:
        return None
    try:
        server_class = _IPv6Server if ":" in address else ThreadingWSGIServer
        server = make_server(address, port, _app(health), server_class, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, name=f"podq-metrics-http-{service}", daemon=True).start()
    except OSError as exc:
        log.error("%s: cannot serve metrics on %s:%s (PODQ_METRICS_PORT/PODQ_METRICS_ADDRESS): %s",
                  service, address, port, exc)
        return None
    served = Served(address=address, port=server.server_port)
    log.info("%s: metrics on %s", service, served.url)
    return served


def start(settings, *, service: str, ping: Callable[[], object], stop: threading.Event,
          health: Health | None = None) -> Served | None:
    """What each service does at start: serve its metrics and /healthz (``settings``: MetricsSettings)
    and time Redis."""
    initialise_shared()
    served = serve(address=settings.address, port=settings.port, service=service, health=health)
    probe_redis(ping, stop=stop)
    return served


def probe_redis(ping: Callable[[], object], *, stop: threading.Event, interval: float = 5.0) -> threading.Thread:
    """Start the named loop that times ``ping`` every ``interval`` seconds into REDIS_ROUNDTRIP."""
    def loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ping()
            except Exception as exc:  # noqa: BLE001 - a failed probe is logged; the services report their own errors
                log.warning("redis probe: %s: %s", type(exc).__name__, exc)
            else:
                REDIS_ROUNDTRIP.observe(time.perf_counter() - started)
            stop.wait(interval)
    thread = threading.Thread(target=loop, name="podq-redis-probe", daemon=True)
    thread.start()
    return thread


if __name__ == "__main__":
    print(markdown_table())
