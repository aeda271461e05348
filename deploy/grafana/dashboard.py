"""Writes deploy/grafana/podq.json: podq's Grafana dashboard, built only on podq's metrics.

Run `python deploy/grafana/dashboard.py` after changing a panel; tests/unit/test_dashboards.py
checks the JSON is what this script writes and that every expression names a real metric.
"""
from __future__ import annotations

import json
from pathlib import Path

# The panels of per-cluster series select the clusters chosen in the dashboard's "cluster" variable.
CLUSTER = 'cluster=~"$cluster"'

# (title, unit, [(expression, legend)]) per panel, row by row.
ROWS = [
    ("Health", [
        ("Services up (scrapes answered)", "short", [
            ("sum by (app) (up{app=~\"podq-(intake|worker|watcher)\"})", "{{app}}")]),
        ("Alive by their own liveness records", "short", [
            ("max by (role) (podq_live_processes)", "{{role}}")]),
        ("Exact totals (the ledger's, survive crashes)", "short", [
            ("max by (event) (podq_ledger_events)", "{{event}}")]),
    ]),
    ("Jobs", [
        ("Admitted and dispatched /s", "ops", [
            ("sum(rate(podq_jobs_accepted_total[1m]))", "accepted"),
            ("sum(rate(podq_jobs_dispatched_total[1m]))", "dispatched"),
            ("sum by (reason) (rate(podq_jobs_refused_total[5m]))", "refused: {{reason}}")]),
        ("Waiting work", "short", [
            ("max(podq_celery_queue_messages)", "Celery messages"),
            ("max(podq_jobs_in_flight)", "in flight"),
            ("max(podq_delayed_jobs)", "delayed"),
            ("max(podq_jobs_stream_lag)", "podq:jobs unread"),
            ("max by (scope) (podq_jobs_stuck)", "stuck without a pod: {{scope}}")]),
        ("Submit → running / terminal (p50, p90, p99)", "s", [
            ("histogram_quantile(0.5, sum by (le) (rate(podq_submit_to_running_seconds_bucket[5m])))", "running p50"),
            ("histogram_quantile(0.9, sum by (le) (rate(podq_submit_to_running_seconds_bucket[5m])))", "running p90"),
            ("histogram_quantile(0.99, sum by (le) (rate(podq_submit_to_running_seconds_bucket[5m])))", "running p99"),
            ("histogram_quantile(0.9, sum by (le) (rate(podq_submit_to_terminal_seconds_bucket[5m])))",
             "terminal p90")]),
    ]),
    ("Workers", [
        ("Creates by cluster and outcome /s", "ops", [
            ("sum by (cluster, outcome) (rate(podq_pod_creates_total{%s}[1m]))" % CLUSTER, "{{cluster}} {{outcome}}"),
            ("max(deriv(podq_ledger_events{event=\"created\"}[5m]))", "pods created (ledger, exact)")]),
        ("Deliveries and redeliveries /s", "ops", [
            ("sum(rate(podq_deliveries_total[1m]))", "deliveries"),
            ("sum(rate(podq_redeliveries_total[1m]))", "redeliveries"),
            ("sum by (cause) (rate(podq_jobs_delayed_total[5m]))", "delayed: {{cause}}")]),
        ("Create-budget slot wait (p90)", "s", [
            ("histogram_quantile(0.9, sum by (le) (rate(podq_rate_limit_wait_seconds_bucket[5m])))", "p90")]),
        ("Create budget per cluster /s", "ops", [
            ("max by (cluster) (podq_create_budget{%s})" % CLUSTER, "{{cluster}} budget"),
            ("max by (cluster) (podq_create_budget_peak{%s})" % CLUSTER, "{{cluster}} peak")]),
    ]),
    ("Create budget (the API server as the ceiling; docs/scaling.md)", [
        ("Budget, creates made and 429s /s", "ops", [
            ("max by (cluster) (podq_create_budget)", "budget {{cluster}}"),
            ("max by (cluster) (podq_create_budget_peak)", "accepted at last push-back {{cluster}}"),
            ("sum(rate(podq_kube_requests_total{verb=\"create\",code=\"201\"}[1m]))", "creates"),
            ("sum(rate(podq_kube_requests_total{verb=\"create\",code=\"429\"}[1m]))", "429s")]),
        ("Why the budget is what it is", "short", [
            ("max by (cluster, reason) (podq_create_budget_reason) > 0", "{{cluster}}: {{reason}}"),
            ("sum by (cluster, reason) (increase(podq_create_budget_cuts_total[5m]))", "cuts {{cluster}}: {{reason}}"),
            ("max by (cluster) (podq_create_budget_pause_seconds)", "Retry-After pause left {{cluster}}")]),
        ("Jobs waiting for create capacity, per scheduler", "short", [
            ("max by (cluster, scheduler) (podq_jobs_waiting)", "{{scheduler}} ({{cluster}})"),
            ("sum(rate(podq_jobs_waited_total[1m]))", "joined a line /s")]),
    ]),
    ("Kubernetes API", [
        ("Requests by cluster, verb and code /s", "reqps", [
            ("sum by (cluster, verb, code) (rate(podq_kube_requests_total{%s}[1m]))" % CLUSTER,
             "{{cluster}} {{verb}} {{code}}")]),
        ("Latency p90 by cluster and verb", "s", [
            ("histogram_quantile(0.9, sum by (le, cluster, verb) "
             "(rate(podq_kube_request_duration_seconds_bucket{%s}[5m])))" % CLUSTER, "{{cluster}} {{verb}}")]),
        ("Error ratio by cluster", "percentunit", [
            ("sum by (cluster) (rate(podq_kube_requests_total{code!~\"2..|404|409\",%s}[5m])) "
             "/ sum by (cluster) (rate(podq_kube_requests_total{%s}[5m]))" % (CLUSTER, CLUSTER),
             "{{cluster}} errors")]),
    ]),
    ("Watcher", [
        ("Leaders per scope", "short", [
            ("max by (scope) (podq_watcher_scope_leased)", "{{scope}} leased"),
            ("sum by (scope) (podq_watcher_leader)", "{{scope}} leaders")]),
        ("Watch events /s", "ops", [
            ("sum by (scope, type) (rate(podq_watch_events_total[1m]))", "{{scope}} {{type}}")]),
        ("Relists, 410s, reconnects, takeovers, fenced", "short", [
            ("sum by (scope) (increase(podq_watch_relists_total[10m]))", "{{scope}} relists"),
            ("sum by (scope) (increase(podq_watch_expired_total[10m]))", "{{scope}} 410s"),
            ("sum by (scope) (increase(podq_watch_reconnects_total[10m]))", "{{scope}} reconnects"),
            ("sum by (scope) (increase(podq_watcher_takeovers_total[10m]))", "{{scope}} takeovers"),
            ("sum by (scope) (increase(podq_watcher_fenced_batches_total[10m]))", "{{scope}} fenced")]),
        ("Seconds since last progress", "s", [
            ("time() - max by (scope) (podq_watcher_last_progress_timestamp_seconds)", "{{scope}}")]),
        ("Reconciler endings", "short", [
            ("sum by (state) (increase(podq_reconciler_endings_total[1h]))", "{{state}}")]),
    ]),
    ("Results and schedulers", [
        ("Results published /s", "ops", [
            ("sum by (state, source) (rate(podq_results_published_total[1m]))", "{{state}} ({{source}})")]),
        ("Per scheduler: lag, pending, read /s", "short", [
            ("max by (scheduler) (podq_results_lag)", "{{scheduler}} lag"),
            ("max by (scheduler) (podq_results_pending)", "{{scheduler}} pending"),
            ("max by (scheduler) (deriv(podq_results_delivered[5m]))", "{{scheduler}} read /s")]),
        ("Oldest unacknowledged result", "s", [
            ("max by (scheduler) (podq_results_oldest_pending_age_seconds)", "{{scheduler}}")]),
        ("Dead letters", "short", [
            ("max(podq_dead_letters)", "podq:dead"),
            ("max by (scheduler) (podq_results_dead_letters)", "{{scheduler}}:dead")]),
    ]),
    ("Redis", [
        ("Round trip p50 / p99", "s", [
            ("histogram_quantile(0.5, sum by (le) (rate(podq_redis_roundtrip_seconds_bucket[5m])))", "p50"),
            ("histogram_quantile(0.99, sum by (le) (rate(podq_redis_roundtrip_seconds_bucket[5m])))", "p99")]),
        ("Stream lengths", "short", [
            ("max(podq_jobs_stream_length)", "podq:jobs"),
            ("max by (scheduler) (podq_results_stream_length)", "{{scheduler}}")]),
    ]),
]


def panel(panel_id: int, title: str, unit: str, targets, *, x: int, y: int) -> dict:
    return {
        "id": panel_id, "type": "timeseries", "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [{"refId": chr(ord("A") + index), "expr": expr, "legendFormat": legend,
                     "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                    for index, (expr, legend) in enumerate(targets)],
    }


def dashboard() -> dict:
    panels, panel_id, y = [], 1, 0
    for row_title, row_panels in ROWS:
        panels.append({"id": panel_id, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        panel_id, y = panel_id + 1, y + 1
        for index, (title, unit, targets) in enumerate(row_panels):
            if index and index % 3 == 0:
                y += 8
            panels.append(panel(panel_id, title, unit, targets, x=(index % 3) * 8, y=y))
            panel_id += 1
        y += 8
    return {
        "uid": "podq", "title": "podq", "tags": ["podq"], "schemaVersion": 39, "version": 1,
        "editable": True, "timezone": "utc", "refresh": "30s", "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"},
                                {"name": "cluster", "type": "query", "label": "Cluster",
                                 "datasource": {"type": "prometheus", "uid": "${datasource}"},
                                 "query": "label_values(podq_pod_creates_total, cluster)", "refresh": 2,
                                 "includeAll": True, "multi": True, "allValue": ".*",
                                 "current": {"text": "All", "value": "$__all"}}]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    (Path(__file__).with_name("podq.json")).write_text(render())
