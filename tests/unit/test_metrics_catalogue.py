"""The metrics catalogue: Prometheus naming conventions, bounded labels, the docs' table, the helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from podq.shared import metrics

FAMILIES = [(family, collector) for collector in list(metrics.REGISTRY._collector_to_names)
            for family in collector.describe()]


@pytest.mark.parametrize("family, collector", FAMILIES, ids=[family.name for family, _ in FAMILIES])
def test_every_metric_follows_the_naming_conventions(family, collector):
    assert family.name.startswith("podq_")
    assert family.name == family.name.lower() and " " not in family.name
    if family.type == "histogram":
        assert family.name.endswith("_seconds"), "time histograms are in seconds"
    if family.type == "gauge":
        assert not family.name.endswith("_total")
    labels = set(collector._labelnames)
    assert not labels & {"job_id", "job", "pod", "pod_name", "uid", "key", "run_id", "task_id"}
    assert family.documentation and family.documentation.endswith(".")


def test_counters_are_served_with_their_total_suffix():
    names = metrics.names()
    assert "podq_pod_creates_total" in names and "podq_jobs_accepted_total" in names
    assert len(names) == len(FAMILIES)


def test_operations_doc_lists_every_metric():
    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert metrics.markdown_table() in doc, "regenerate with: .venv/bin/python -m podq.shared.metrics"


FIELDS = ("scheduler_id", "task_key", "namespace", "pod_template", "command")


@pytest.mark.parametrize("reason, label", [
    ("job.namespace: 'X' is not a valid namespace name", "namespace"),
    ("job.task_key.dag_id: required field is missing", "task_key"),
    ("job.pod_override[3]: not a map", "record"),
    ("job.whatever_a_producer_sends: unknown", "record"),
    ("job: record is 300000 bytes, over the 262144-byte limit", "too_large"),
    ("entry: no 'record' field holding a msgpack job", "entry"),
    ("no colon at all", "record"),
])
def test_a_refusal_reason_becomes_one_of_a_few_labels(reason, label):
    assert metrics.refusal_reason(reason, FIELDS) == label


class _Failing(Exception):
    status = 503


class _Api:
    def create_pod(self, pod):
        return {"created": pod}

    def read_pod(self, name):
        raise _Failing("unavailable")

    other = "passes through"


def _count(verb: str, code: str) -> float:
    return metrics.REGISTRY.get_sample_value("podq_kube_requests_total",
                                             {"cluster": "default", "verb": verb, "code": code}) or 0.0


def test_metered_counts_each_call_by_verb_and_status():
    api = metrics.Metered(_Api(), {"create_pod": "create-test", "read_pod": "get-test"},
                          ok_code=lambda verb: "201")
    before_ok, before_failed = _count("create-test", "201"), _count("get-test", "503")
    assert api.create_pod("p") == {"created": "p"}
    with pytest.raises(_Failing):
        api.read_pod("p")
    assert api.other == "passes through"
    assert _count("create-test", "201") == before_ok + 1
    assert _count("get-test", "503") == before_failed + 1
    assert metrics.REGISTRY.get_sample_value("podq_kube_request_duration_seconds_count",
                                             {"cluster": "default", "verb": "create-test"}) >= 1


def test_a_port_that_cannot_be_bound_is_reported_not_raised(caplog):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert metrics.serve(address="127.0.0.1", port=port, service="test") is None
    assert f"cannot serve metrics on 127.0.0.1:{port}" in caplog.text
    assert metrics.serve(address="127.0.0.1", port=-1, service="test") is None


def _series(name: str) -> list[dict]:
    return [sample.labels for family in metrics.REGISTRY.collect() if family.name == name
            for sample in family.samples if sample.name == name + "_total"]


def test_every_labelled_counter_has_its_series_from_start_up():
    """What each service creates at start: a labelled counter whose series appeared only at its first
    increment would give increase() and rate() nothing for that first value (the issue: 16 % of the
    creates of a quiet run missing from the dashboard)."""
    from podq.broker.intake.service import Intake
    from podq.watcher.daemon import initialise_metrics as watcher_series
    from podq.workers.create import Outcome
    from podq.workers.create import initialise_metrics as worker_series
    from podq.workers.errors import KNOWN_STATUSES

    metrics.initialise_shared()
    worker_series()
    watcher_series(["start-up-scope"])
    Intake.initialise_metrics()
    metrics.Metered(_Api(), {"create_pod": "create-start-up"}, ok_code=lambda verb: "201", codes=KNOWN_STATUSES)
    labelled = [family.name for family, collector in FAMILIES if family.type == "counter" and collector._labelnames]
    assert labelled and all(_series(name) for name in labelled), [name for name in labelled if not _series(name)]
    assert {labels["outcome"] for labels in _series("podq_pod_creates")} >= {outcome.value for outcome in Outcome}
    assert {"start-up-scope"} == {labels["scope"] for labels in _series("podq_watch_events")
                                  if labels["scope"] == "start-up-scope"}
    assert {labels["code"] for labels in _series("podq_kube_requests") if labels["verb"] == "create-start-up"} \
        == {"201", "0", "409", "429", "500", "503"} | {str(code) for code in KNOWN_STATUSES}
    assert metrics.REGISTRY.get_sample_value("podq_pod_creates_total",
                                             {"cluster": "default", "outcome": "created"}) is not None


def test_initialise_makes_every_combination():
    family = metrics.CONTROL_RECORDS
    metrics.initialise(family, ["op-a", "op-b"], ["x", "y"])
    assert {(labels["op"], labels["outcome"]) for labels in _series("podq_control_records")} >= {
        ("op-a", "x"), ("op-a", "y"), ("op-b", "x"), ("op-b", "y")}
