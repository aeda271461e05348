"""deploy/prometheus/alerts.yaml on the real stack: each rule fires on its condition and none on a healthy run.

One stack (its own module, so its counters start at zero) is scraped every 0.5 s from start-up by the
test suite's small Prometheus (tests/support/prometheus.py: ``up``, staleness, PromQL, ``for``); the
rules are evaluated on what was scraped, with time compressed 60 times (``for: 5m`` holds 5 s, ``[10m]``
covers 10 s). The tests run in order, each breaking one more thing: a healthy run, a scheduler that
reads nothing, a refused record, a job that cannot be created, every create failing, intake down, every
worker down, the watcher down. Not driven here: PodqResultsUnacknowledged and PodqRedisSlow (thresholds
of 15 minutes and 100 ms that time compression cannot reach) and PodqResultDeadLettersGrowing.
"""
from __future__ import annotations

import threading
import time

import msgpack
import pytest

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store import counters, keys
from podq.kubesim.admin import Admin
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import load_settings
from podq.stack import Stack, StackOptions
from tests.support import wait_for
from tests.support.prometheus import Evaluator, Scraper, evaluate_rule, rules, stack_targets

SCALE = 1 / 60
HEALTHY = "alerts-healthy"
RULES = rules()
ENV = {"PODQ_WORKER_VISIBILITY_TIMEOUT": "10",
       # A job without a pod for 4 s counts as stuck (production: 5 min), counted every 0.5 s.
       "PODQ_WATCHER_STUCK_AFTER": "4", "PODQ_WATCHER_RECONCILE_INTERVAL": "0.5"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(workers=2, worker_concurrency=4, data_dir=str(tmp_path_factory.mktemp("alerts")),
                           extra_env=ENV)
    with Stack(load_settings({}), options) as running:
        yield running


@pytest.fixture(scope="module")
def scraper(stack):
    scraping = Scraper(stack_targets(stack.metrics), interval=0.5).start()
    # Every service answered once before any job: each counter's first sample is its start-up 0.
    wait_for(lambda: all(scraping.answered(name) for name in stack.metrics), timeout=60,
             message="every service scraped")
    scraping.ready = scraping.scrapes[-1]
    yield scraping
    scraping.stop()


@pytest.fixture(scope="module")
def client(stack_redis):
    return stack_redis        # conftest's connection, to this module's stack


@pytest.fixture(scope="module")
def reader(client):
    """The healthy scheduler: reads and acknowledges its results all along."""
    consumer = ResultsConsumer(client, scheduler_id=HEALTHY, consumer="reader")
    seen: dict[str, list] = {}
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            batch = consumer.read(block_ms=200)
            for result in batch:
                seen.setdefault(result.job_id, []).append(result)
            consumer.ack(batch)
    thread = threading.Thread(target=loop, name="alerts-reader", daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join(10)


def jobs(scheduler_id: str, count: int, *, tag: str, run_seconds: float = 0.2) -> list[KubernetesJob]:
    annotations = {"kubesim.podq.io/run-seconds": str(run_seconds)}
    return [KubernetesJob.new(scheduler_id=scheduler_id, key=TaskKey(dag_id="alerts", task_id=f"{tag}-{n}", run_id="r"),
                              command=["true"], pod_override={"metadata": {"annotations": annotations}})
            for n in range(count)]


def history(scraper: Scraper, name: str, since: float, *, scale: float = SCALE):
    return evaluate_rule(RULES[name], Evaluator(scraper.store, scale=scale),
                         [at for at in list(scraper.scrapes) if at >= since])


def wait_fired(scraper: Scraper, name: str, since: float, *, timeout: float = 90.0, **labels: str):
    return wait_for(lambda: (found := history(scraper, name, since)).fired_for(**labels) and found,
                    timeout=timeout, interval=1.0, message=f"{name} {labels or ''} to fire")


def wait_scrapes(scraper: Scraper, count: int) -> float:
    """Wait until ``count`` more scrapes were taken; returns the last one's time."""
    target = len(scraper.scrapes) + count
    wait_for(lambda: len(scraper.scrapes) >= target, timeout=60, message=f"{count} more scrapes")
    return scraper.scrapes[-1]


def test_a_healthy_run_fires_no_rule_and_increase_counts_every_create(stack, scraper, client, reader):
    started = scraper.ready
    batch = jobs(HEALTHY, 60, tag="healthy")
    submit_many(client, batch)
    wait_for(lambda: all(any(r.terminal for r in reader.get(job.job_id, [])) for job in batch), timeout=120,
             message="every healthy job ended")
    # Long enough after the run for every rule's longest window (15 min → 15 s) to have passed over it.
    end = wait_scrapes(scraper, 34)
    fired = {name: history(scraper, name, started).firing[:1] for name in RULES}
    assert {name: first for name, first in fired.items() if first} == {}
    # A quiet run: increase() over the scraped counters is the truth (kubesim's audit, the ledger's total).
    audit = Admin(stack.kubesim_url).create_count()
    assert audit == len(batch)
    assert counters.totals(client)[counters.CREATED] == audit
    whole_run = Evaluator(scraper.store)                # no compression: [1h] covers the run
    (created,) = whole_run('sum(increase(podq_pod_creates_total{outcome="created"}[1h]))', end)
    assert created.value == pytest.approx(audit)
    (ledger,) = whole_run('max(podq_ledger_events{event="created"})', end)
    assert ledger.value == audit


def test_results_not_read_and_a_growing_lag_fire_for_the_scheduler_that_reads_nothing(stack, scraper, client,
                                                                                        reader):
    since = scraper.scrapes[-1]
    unread = jobs("alerts-unread", 60, tag="unread")
    for start in range(0, len(unread), 10):
        submit_many(client, unread[start:start + 10])
        time.sleep(1.0)   # pacing: the results arrive over several seconds, so the lag grows for a while
    found = wait_fired(scraper, "PodqResultsNotRead", since, scheduler="alerts-unread")
    assert not found.fired_for(scheduler=HEALTHY)
    lag = wait_fired(scraper, "PodqConsumerLagGrowing", since, scheduler="alerts-unread")
    assert not lag.fired_for(scheduler=HEALTHY)


def test_dead_letters_growing_fires_for_a_refused_record(stack, scraper, client, reader):
    since = scraper.scrapes[-1]
    client.xadd(keys.JOBS_STREAM, {keys.RECORD_FIELD: msgpack.packb({"scheduler_id": HEALTHY})})
    wait_fired(scraper, "PodqDeadLettersGrowing", since)


def test_jobs_stuck_fires_for_a_job_that_cannot_be_created(stack, scraper, client, reader):
    admin = Admin(stack.kubesim_url)
    (stuck,) = jobs(HEALTHY, 1, tag="stuck")
    fault = admin.add_fault(action="503", verb="create", name_prefix=pod_name_for(stuck.job_id, stuck.key))
    since = scraper.scrapes[-1]
    try:
        submit_many(client, [stuck])
        wait_fired(scraper, "PodqJobsStuck", since, scope="default")
    finally:
        admin.remove_fault(fault)


def test_kube_api_errors_fires_while_the_api_server_fails_creates(stack, scraper, client, reader):
    admin = Admin(stack.kubesim_url)
    failing = jobs(HEALTHY, 10, tag="api-errors")
    fault = admin.add_fault(action="500", verb="create")
    since = scraper.scrapes[-1]
    try:
        submit_many(client, failing)
        wait_fired(scraper, "PodqKubeApiErrors", since)
    finally:
        admin.remove_fault(fault)
    wait_for(lambda: all(any(r.terminal for r in reader.get(job.job_id, [])) for job in failing), timeout=120,
             message="the failing jobs done once the API server answers")


def test_intake_down_fires_and_the_watcher_keeps_the_gauges_published(stack, scraper, client, reader):
    since = scraper.scrapes[-1]
    killed_at = time.time()
    stack.processes["intake"].kill()
    stack.processes["intake"].wait(10)
    try:
        wait_fired(scraper, "PodqIntakeDown", since)
        wait_fired(scraper, "PodqServiceDown", since, instance="intake")
        # The gauges the alerts need are still published (by the watcher): intake's own record lapsed.
        evaluator = Evaluator(scraper.store, scale=SCALE)
        wait_for(lambda: [s.value for s in evaluator('max(podq_live_processes{role="intake"})',
                                                     scraper.scrapes[-1])] == [0.0],
                 timeout=60, message="the watcher's gauges to show no live intake")
        assert evaluator('podq_celery_queue_messages{instance="watcher"}', scraper.scrapes[-1])
        print(f"intake down: alerts fired within {time.time() - killed_at:.1f} s")
    finally:
        stack.spawn("intake", stack.argv["intake"])


def test_no_workers_while_jobs_wait_fires(stack, scraper, client, reader):
    since = scraper.scrapes[-1]
    for name in ("worker-1", "worker-2"):
        stack.processes[name].kill()
        stack.processes[name].wait(10)
    waiting = jobs(HEALTHY, 5, tag="no-workers")
    try:
        submit_many(client, waiting)
        wait_fired(scraper, "PodqNoWorkersWhileJobsWait", since)
        wait_fired(scraper, "PodqServiceDown", since, instance="worker-1")
        wait_fired(scraper, "PodqJobsAcceptedNotCreated", since)
    finally:
        for name in ("worker-1", "worker-2"):
            stack.spawn(name, stack.argv[name])
    wait_for(lambda: all(any(r.terminal for r in reader.get(job.job_id, [])) for job in waiting), timeout=120,
             message="the waiting jobs done once workers are back")


def test_watcher_down_fires_and_the_scope_is_leaderless_before_its_lease_ends(stack, scraper, client, reader):
    since = scraper.scrapes[-1]
    killed_at = time.time()
    stack.processes["watcher"].kill()
    stack.processes["watcher"].wait(10)
    wait_fired(scraper, "PodqWatcherDown", since)
    found = wait_fired(scraper, "PodqNoWatcherLeader", since, scope="default")
    print(f"watcher SIGKILLed: scope default shown leaderless {found.first_active(scope='default') - killed_at:.1f} s "
          "later (its lease: 10 s)")
