"""The Grafana dashboard and the Prometheus alert rules: every expression parses (promql-parser)
and selects only metrics of podq's catalogue; the dashboard JSON is what its script writes.
(tests/e2e/test_metrics.py compares the same names with a live scrape.)"""
from __future__ import annotations

import importlib.util
import json

import promql_parser
import pytest

from podq.shared import metrics
from tests.support.promql import ALERTS, DASHBOARD, expressions, family_of, selected_names

EXPRESSIONS = expressions()
CATALOGUE = set(metrics.names())


def test_there_are_panels_and_the_alerts_the_operators_need():
    alerts = {where.split(" ", 1)[1] for where, _ in EXPRESSIONS if where.startswith("alert ")}
    assert {"PodqJobsAcceptedNotCreated", "PodqConsumerLagGrowing", "PodqNoWatcherLeader",
            "PodqDeadLettersGrowing", "PodqKubeApiErrors", "PodqServiceDown", "PodqIntakeDown", "PodqWatcherDown",
            "PodqNoWorkersWhileJobsWait", "PodqJobsStuck", "PodqResultsNotRead"} <= alerts
    assert sum(1 for where, _ in EXPRESSIONS if where.startswith("dashboard")) >= 20


@pytest.mark.parametrize("where, expression", EXPRESSIONS, ids=[where for where, _ in EXPRESSIONS])
def test_every_expression_parses_and_uses_only_catalogue_metrics(where, expression):
    names = selected_names(expression)
    assert names, f"{where}: selects no metric"
    unknown = {name for name in names if family_of(name, CATALOGUE) is None}
    assert not unknown, f"{where}: not in the catalogue: {unknown}"


def test_the_name_check_can_fail():
    assert selected_names("sum(rate(podq_nonexistent_total[5m])) / on() podq_celery_queue_messages") == {
        "podq_nonexistent_total", "podq_celery_queue_messages"}
    assert family_of("podq_nonexistent_total", CATALOGUE) is None
    assert family_of("podq_redis_roundtrip_seconds_bucket", CATALOGUE) == "podq_redis_roundtrip_seconds"
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(podq_jobs_accepted_total[5m])")


def test_the_dashboard_json_is_what_its_script_writes():
    spec = importlib.util.spec_from_file_location("dashboard", DASHBOARD.with_name("dashboard.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert DASHBOARD.read_text() == module.render(), "regenerate: python deploy/grafana/dashboard.py"
    board = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) and board["uid"] == "podq"


def test_every_alert_has_a_severity_and_a_summary():
    import yaml
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
