"""The PromQL expressions of podq's dashboard and alert rules, and the metric names they use."""
from __future__ import annotations

import json
from pathlib import Path

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "podq.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")
# Series Prometheus makes itself for every target (the alert rules' `up`), served by no podq process.
PROMETHEUS_SERIES = frozenset({"up"})


def expressions() -> list[tuple[str, str]]:
    """(where, expression) for every dashboard target and every alert rule."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            found.append((f"dashboard panel {panel['title']!r} {target['refId']}", target["expr"]))
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            found.append((f"alert {rule['alert']}", rule["expr"]))
    return found


def selected_names(expression: str) -> set[str]:
    """Every metric name a PromQL expression selects (parsed by promql-parser; raises on a syntax error)."""
    names: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
            return
        for attribute in ("lhs", "rhs", "expr", "vector_selector", "param"):
            child = getattr(node, attribute, None)
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child)
        for child in getattr(node, "args", None) or []:
            walk(child)
    walk(promql_parser.parse(expression))
    return names


def family_of(series: str, families: set[str]) -> str | None:
    """The metric family a series name belongs to (``x_bucket`` → ``x`` for a histogram), if any;
    Prometheus's own per-target series count as known."""
    if series in families or series in PROMETHEUS_SERIES:
        return series
    for suffix in HISTOGRAM_SERIES:
        if series.endswith(suffix) and series[: -len(suffix)] in families:
            return series[: -len(suffix)]
    return None
