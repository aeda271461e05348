"""Every service of the running stack serves Prometheus metrics, and they agree with what happened.

A fresh stack (its own module, so its counters start at zero) runs 12 jobs, 3 of them failing, plus a
job intake refuses (a bad namespace: its scheduler gets a failed result) and a record it cannot read; then each service's /metrics is scraped over HTTP and compared with the
results stream, kubesim's create log and the ledger.
"""
from __future__ import annotations

import urllib.request
from collections import Counter

import msgpack
from prometheus_client.parser import text_string_to_metric_families

from podq.broker.client.submit import submit_many
from podq.broker.store import keys
from podq.shared import metrics
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from tests.support import wait_for
from tests.support.promql import expressions, family_of, selected_names

SCHEDULER = "metered"
JOBS = 12
FAILING = 3


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of one scrape, keyed by (sample name, sorted labels)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (sample, sample_labels), v in samples.items()
               if sample == name and labels.items() <= dict(sample_labels).items())


def make_jobs() -> list[KubernetesJob]:
    jobs = []
    for n in range(JOBS):
        annotations = {"kubesim.podq.io/run-seconds": "0.3"}
        if n < FAILING:
            annotations["kubesim.podq.io/exit-code"] = "3"
        jobs.append(KubernetesJob.new(scheduler_id=SCHEDULER, key=TaskKey(dag_id="m", task_id=f"t{n}", run_id="r"),
                                      command=["true"], pod_override={"metadata": {"annotations": annotations}}))
    return jobs


def stream_results(client) -> list[KubernetesWatch]:
    return [KubernetesWatch.decode(fields[b"record"]) for _, fields in client.xrange(keys.results_stream(SCHEDULER))]


def test_every_service_serves_metrics_that_match_the_run(stack, stack_redis, stack_admin):
    assert set(stack.metrics) == {"intake", "worker-1", "worker-2", "watcher"}
    assert all(url.startswith("http://127.0.0.1:") for url in stack.metrics.values())
    jobs = make_jobs()
    submit_many(stack_redis, jobs)
    refused = KubernetesJob.new(scheduler_id=SCHEDULER, key=TaskKey(dag_id="m", task_id="refused", run_id="r"),
                                command=["true"], namespace="Not_A_Namespace")
    submit_many(stack_redis, [refused])
    stack_redis.xadd(keys.JOBS_STREAM, {"record": msgpack.packb({"scheduler_id": SCHEDULER, "command": ["x"]})})

    def all_terminal():
        return sum(1 for result in stream_results(stack_redis) if result.terminal) == JOBS + 1
    wait_for(all_terminal, timeout=90, interval=0.2, message="every job's terminal result")
    results = stream_results(stack_redis)
    by_state = Counter(result.state.value for result in results)
    assert by_state["failed"] == FAILING + 1 and by_state["succeeded"] == JOBS - FAILING

    intake = stack.metrics["intake"]
    workers = [stack.metrics["worker-1"], stack.metrics["worker-2"]]
    watcher = stack.metrics["watcher"]

    # Intake: what it admitted, dispatched and refused; its gauges read from Redis (refreshed every 2 s).
    def intake_settled():
        samples = scrape(intake)
        return (value(samples, "podq_results_stream_length", scheduler=SCHEDULER) == len(results)
                and value(samples, "podq_watcher_scope_leased", scope="default") == 1
                and value(samples, "podq_jobs_in_flight") == 0 and samples)
    samples = wait_for(intake_settled, timeout=30, interval=0.5, message="intake's gauges caught up")
    assert value(samples, "podq_jobs_accepted_total") == JOBS
    assert value(samples, "podq_jobs_dispatched_total") == JOBS
    assert value(samples, "podq_jobs_refused_total") == 2
    assert value(samples, "podq_jobs_refused_total", reason="namespace") == 1
    assert value(samples, "podq_jobs_refused_total", reason="record") == 1
    assert value(samples, "podq_dead_letters") == stack_redis.xlen(keys.DEAD_STREAM) == 2
    assert value(samples, "podq_celery_queue_messages") == 0

    # Workers: one create per job, all answered 201, counted across both processes.
    worker_samples = [scrape(url) for url in workers]
    created = sum(value(s, "podq_pod_creates_total", outcome="created") for s in worker_samples)
    assert created == JOBS == stack_admin.create_count(namespace="default")
    assert sum(value(s, "podq_kube_requests_total", verb="create", code="201") for s in worker_samples) == JOBS
    assert sum(value(s, "podq_kube_request_duration_seconds_count", verb="create") for s in worker_samples) == JOBS
    assert sum(value(s, "podq_deliveries_total") for s in worker_samples) >= JOBS

    # Watcher: results by state equal the stream's contents; it leads its scope; latencies observed.
    samples = scrape(watcher)
    watcher_states = Counter(result.state.value for result in results if result.source.value == "watcher")
    for state, count in watcher_states.items():
        assert value(samples, "podq_results_published_total", state=state, source="watcher") == count, state
    assert value(samples, "podq_watcher_leader", scope="default") == 1
    assert value(samples, "podq_watch_events_total", scope="default") >= JOBS
    assert value(samples, "podq_submit_to_running_seconds_count") == by_state["running"]
    assert value(samples, "podq_submit_to_terminal_seconds_count") == JOBS
    # The refused job's failed result was published by intake.
    assert value(scrape(intake), "podq_results_published_total", state="failed", source="intake") == 1

    # Every service times Redis, and every family it serves is in the catalogue.
    catalogue = set(metrics.names())
    served: set[str] = set()
    for url in [intake, *workers, watcher]:
        assert value(scrape(url), "podq_redis_roundtrip_seconds_count") >= 1, url
        assert families(url) <= catalogue, families(url) - catalogue
        served |= families(url)
    # Every metric the dashboard and the alert rules select is served by some service.
    for where, expression in expressions():
        missing = {name for name in selected_names(expression) if family_of(name, served) is None}
        assert not missing, f"{where}: {missing} in no scrape"


def families(url: str) -> set[str]:
    """The podq metric families one scrape serves (counters named with their ``_total``)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {f"{family.name}_total" if family.type == "counter" else family.name
            for family in text_string_to_metric_families(text) if family.name.startswith("podq_")}
