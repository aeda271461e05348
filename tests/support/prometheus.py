"""A small Prometheus for tests: scrape podq's services, keep the samples, evaluate PromQL and alert rules.

No PyPI package evaluates PromQL offline, so this implements the subset podq's alert rules and
dashboard use, on promql-parser's syntax tree, with Prometheus's own semantics where they matter:

* a scrape adds ``up`` (1, or 0 when the target did not answer) and the target's labels; a series that
  vanishes (its target down, or gone from the page) gets a staleness marker, so an instant selector
  stops returning it at once, as Prometheus does;
* instant selectors take the latest sample within the lookback window (5 minutes, scaled);
* ``rate``/``increase``/``delta`` extrapolate exactly as Prometheus's ``extrapolatedRate`` (counter
  resets, the zero point, extrapolation limited to 1.1 average intervals); ``deriv`` is the least-squares
  slope; ``histogram_quantile`` interpolates within buckets; ``absent``, ``time``,
  ``max/min/avg/sum/count_over_time``;
* aggregations ``sum``, ``max``, ``min``, ``avg``, ``count`` with ``by``/``without``; arithmetic and
  comparison operators (filtering, or ``bool``) between vectors and scalars, one-to-one matching with
  ``on``/``ignoring``; ``and``, ``or``, ``unless``;
* alert rules: ``expr`` true for ``for`` → firing, evaluated at every scrape.

**Time compression.** A test cannot wait the minutes the rules are written for, so :class:`Evaluator`
takes ``scale``: every duration in an expression (ranges, offsets, the lookback window) and each rule's
``for`` is multiplied by it (``scale=1/60``: ``[10m]`` covers 10 s), while the samples are scraped every
fraction of a second. Thresholds on values are not scaled: a rule compares figures podq computes, and
the figures that hold a duration (how long jobs wait) are computed by podq against settings a test sets.
"""
from __future__ import annotations

import math
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Iterable

import promql_parser as pp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .promql import ALERTS

Labels = frozenset  # frozenset of (name, value) pairs, __name__ included
LOOKBACK = 300.0


def labels_of(key: Labels) -> dict[str, str]:
    return dict(key)


def _key(labels: dict[str, str]) -> Labels:
    return frozenset(labels.items())


def _without_name(labels: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in labels.items() if name != "__name__"}


# -- storage and scraping ----------------------------------------------------------------------------
class Store:
    """Samples by series; ``None`` is a staleness marker."""

    def __init__(self) -> None:
        self.series: dict[Labels, list[tuple[float, float | None]]] = {}
        self._lock = threading.Lock()

    def add(self, labels: dict[str, str], at: float, value: float | None) -> None:
        with self._lock:
            self.series.setdefault(_key(labels), []).append((at, value))

    def select(self, name: str | None, matchers: Iterable) -> list[tuple[Labels, list[tuple[float, float | None]]]]:
        with self._lock:
            items = list(self.series.items())
        chosen = []
        for key, samples in items:
            labels = dict(key)
            if name and labels.get("__name__") != name:
                continue
            if all(_matches(matcher, labels.get(matcher.name, "")) for matcher in matchers):
                chosen.append((key, list(samples)))
        return chosen


def _matches(matcher, value: str) -> bool:
    op = str(matcher.op)
    if op.endswith("NotEqual") or op == "!=":
        return value != matcher.value
    if op.endswith("NotRe") or op == "!~":
        return re.fullmatch(matcher.value, value) is None
    if op.endswith("Re") or op == "=~":
        return re.fullmatch(matcher.value, value) is not None
    return value == matcher.value


@dataclass
class Target:
    url: str
    labels: dict[str, str]
    seen: set[Labels] = field(default_factory=set)


class Scraper:
    """Scrapes each target every ``interval`` seconds into a :class:`Store`, in a thread of its own."""

    def __init__(self, targets: dict[str, Target], *, interval: float = 0.5, store: Store | None = None) -> None:
        self.targets = targets
        self.interval = interval
        self.store = store or Store()
        self.scrapes: list[float] = []
        self.ready: float = 0.0
        """When a test saw every target answer (it sets it)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-scraper", daemon=True)

    def start(self) -> "Scraper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scrape_once()
            self._stop.wait(self.interval)  # the scrape interval, not a wait for a condition

    def answered(self, instance: str, *, since: float = 0.0) -> bool:
        """True when ``instance``'s latest scrape (taken after ``since``) answered (``up`` 1)."""
        for key, samples in list(self.store.series.items()):
            labels = dict(key)
            if labels.get("__name__") == "up" and labels.get("instance") == instance and samples:
                at, value = samples[-1]
                return value == 1.0 and at > since
        return False

    def scrape_once(self) -> float:
        at = time.time()
        for target in list(self.targets.values()):
            self._scrape(target, at)
        self.scrapes.append(at)
        return at

    def _scrape(self, target: Target, at: float) -> None:
        try:
            with urllib.request.urlopen(target.url, timeout=2.0) as answer:
                text = answer.read().decode()
        except OSError:
            text = None
        self.store.add({"__name__": "up", **target.labels}, at, 1.0 if text is not None else 0.0)
        now_seen: set[Labels] = set()
        if text is not None:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = {"__name__": sample.name, **sample.labels, **target.labels}
                    now_seen.add(_key(labels))
                    self.store.add(labels, at, float(sample.value))
        for gone in target.seen - now_seen:
            self.store.add(dict(gone), at, None)
        target.seen = now_seen


# -- evaluation --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class Evaluator:
    """Evaluates PromQL over a :class:`Store` at a given time; durations multiplied by ``scale``."""

    def __init__(self, store: Store, *, scale: float = 1.0) -> None:
        self.store = store
        self.scale = scale

    def __call__(self, expression: str, at: float) -> list[Sample] | float:
        return self.eval(pp.parse(expression), at)

    def seconds(self, delta) -> float:
        return (delta.total_seconds() if delta is not None else 0.0) * self.scale

    def eval(self, node, at: float):
        if isinstance(node, pp.NumberLiteral):
            return float(node.val)
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr, at)
        if isinstance(node, pp.UnaryExpr):
            value = self.eval(node.expr, at)
            return -value if isinstance(value, float) else [Sample(_without_name(s.labels), -s.value) for s in value]
        if isinstance(node, pp.VectorSelector):
            return self._instant(node, at)
        if isinstance(node, pp.Call):
            return self._call(node, at)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node, at)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node, at)
        raise NotImplementedError(f"PromQL node {type(node).__name__} ({node})")

    # selectors
    def _instant(self, selector, at: float) -> list[Sample]:
        at -= self.seconds(selector.offset)
        found = []
        for key, samples in self.store.select(selector.name, selector.matchers.matchers):
            latest = [value for t, value in samples if at - LOOKBACK * self.scale < t <= at]
            if latest and latest[-1] is not None:
                found.append(Sample(labels_of(key), latest[-1]))
        return found

    def _range(self, matrix, at: float) -> list[tuple[dict[str, str], list[tuple[float, float]], float, float]]:
        selector = matrix.vector_selector
        end = at - self.seconds(selector.offset)
        start = end - self.seconds(matrix.range)
        found = []
        for key, samples in self.store.select(selector.name, selector.matchers.matchers):
            points = [(t, value) for t, value in samples if start < t <= end and value is not None]
            if points:
                found.append((labels_of(key), points, start, end))
        return found

    # functions
    def _call(self, call, at: float):
        name, args = call.func.name, list(call.args)
        if name == "time":
            return at
        if name in ("rate", "increase", "delta"):
            out = []
            for labels, points, start, end in self._range(args[0], at):
                value = _extrapolated(points, start, end, counter=name != "delta", rate=name == "rate")
                if value is not None:
                    out.append(Sample(_without_name(labels), value))
            return out
        if name == "deriv":
            out = []
            for labels, points, _, _ in self._range(args[0], at):
                if len(points) >= 2:
                    out.append(Sample(_without_name(labels), _slope(points)))
            return out
        if name.endswith("_over_time"):
            reduce = {"max_over_time": max, "min_over_time": min, "sum_over_time": sum,
                      "count_over_time": len, "avg_over_time": lambda v: sum(v) / len(v)}[name]
            return [Sample(_without_name(labels), float(reduce([v for _, v in points])))
                    for labels, points, _, _ in self._range(args[0], at)]
        if name == "absent":
            if self.eval(args[0], at):
                return []
            return [Sample(_absent_labels(args[0]), 1.0)]
        if name == "histogram_quantile":
            return _histogram_quantile(self.eval(args[0], at), self.eval(args[1], at))
        raise NotImplementedError(f"PromQL function {name}")

    # aggregation
    def _aggregate(self, node, at: float) -> list[Sample]:
        values = self.eval(node.expr, at)
        modifier = node.modifier
        groups: dict[Labels, tuple[dict[str, str], list[float]]] = {}
        for sample in values:
            labels = _without_name(sample.labels)
            if modifier is None:
                kept = {}
            elif str(modifier.type).endswith("Without"):
                kept = {k: v for k, v in labels.items() if k not in modifier.labels}
            else:
                kept = {k: v for k, v in labels.items() if k in modifier.labels}
            groups.setdefault(_key(kept), (kept, []))[1].append(sample.value)
        reduce = {"sum": sum, "max": max, "min": min, "count": len, "avg": lambda v: sum(v) / len(v)}[str(node.op)]
        return [Sample(kept, float(reduce(items))) for kept, items in groups.values()]

    # binary operators
    def _binary(self, node, at: float):
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs, at), self.eval(node.rhs, at)
        modifier = node.modifier
        return_bool = bool(modifier and modifier.return_bool)
        if op in ("and", "or", "unless"):
            return _set_op(op, lhs, rhs, modifier)
        if isinstance(lhs, float) and isinstance(rhs, float):
            return float(_apply(op, lhs, rhs)) if op in _ARITHMETIC or return_bool else _apply(op, lhs, rhs) and lhs
        if isinstance(rhs, float) or isinstance(lhs, float):
            vector, scalar, left = (lhs, rhs, True) if isinstance(rhs, float) else (rhs, lhs, False)
            out = []
            for sample in vector:
                a, b = (sample.value, scalar) if left else (scalar, sample.value)
                result = _apply(op, a, b)
                if op in _ARITHMETIC:
                    out.append(Sample(_without_name(sample.labels), result))
                elif return_bool:
                    out.append(Sample(_without_name(sample.labels), float(result)))
                elif result:
                    out.append(sample)
            return out
        matched = _match(lhs, rhs, modifier)
        out = []
        for left, right in matched:
            result = _apply(op, left.value, right.value)
            if op in _ARITHMETIC:
                out.append(Sample(_result_labels(left.labels, modifier), result))
            elif return_bool:
                out.append(Sample(_result_labels(left.labels, modifier), float(result)))
            elif result:
                out.append(left)
        return out


_ARITHMETIC = {"+", "-", "*", "/", "%", "^"}


def _apply(op: str, a: float, b: float):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))
    if op == "%":
        return math.fmod(a, b) if b else math.nan
    if op == "^":
        return a ** b
    return {"==": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]


def _signature(labels: dict[str, str], modifier) -> Labels:
    labels = _without_name(labels)
    matching = modifier.matching if modifier is not None else None
    if matching is None:
        return _key(labels)
    if str(matching.type).endswith("Include"):
        return _key({k: v for k, v in labels.items() if k in matching.labels})
    return _key({k: v for k, v in labels.items() if k not in matching.labels})


def _result_labels(labels: dict[str, str], modifier) -> dict[str, str]:
    labels = _without_name(labels)
    matching = modifier.matching if modifier is not None else None
    if matching is not None and str(matching.type).endswith("Include"):
        return {k: v for k, v in labels.items() if k in matching.labels}
    if matching is not None:
        return {k: v for k, v in labels.items() if k not in matching.labels}
    return labels


def _match(lhs: list[Sample], rhs: list[Sample], modifier) -> list[tuple[Sample, Sample]]:
    right: dict[Labels, Sample] = {}
    for sample in rhs:
        signature = _signature(sample.labels, modifier)
        if signature in right:
            raise ValueError(f"many-to-one match on the right-hand side: {dict(signature)}")
        right[signature] = sample
    return [(sample, right[sig]) for sample in lhs if (sig := _signature(sample.labels, modifier)) in right]


def _set_op(op: str, lhs: list[Sample], rhs: list[Sample], modifier) -> list[Sample]:
    right = {_signature(sample.labels, modifier) for sample in rhs}
    if op == "and":
        return [sample for sample in lhs if _signature(sample.labels, modifier) in right]
    if op == "unless":
        return [sample for sample in lhs if _signature(sample.labels, modifier) not in right]
    left = {_signature(sample.labels, modifier) for sample in lhs}
    return lhs + [sample for sample in rhs if _signature(sample.labels, modifier) not in left]


def _absent_labels(node) -> dict[str, str]:
    """absent()'s result labels: the equality matchers of a plain selector argument."""
    while isinstance(node, (pp.ParenExpr, pp.BinaryExpr)):
        node = node.expr if isinstance(node, pp.ParenExpr) else node.lhs
    if isinstance(node, pp.VectorSelector):
        return {m.name: m.value for m in node.matchers.matchers
                if str(m.op).endswith("Equal") and not str(m.op).endswith("NotEqual") and m.name != "__name__"}
    return {}


def _extrapolated(points: list[tuple[float, float]], start: float, end: float, *, counter: bool,
                  rate: bool) -> float | None:
    """Prometheus's extrapolatedRate (promql/functions.go)."""
    if len(points) < 2:
        return None
    result = points[-1][1] - points[0][1]
    if counter:
        for (_, before), (_, after) in zip(points, points[1:]):
            if after < before:
                result += before
    to_start = points[0][0] - start
    to_end = end - points[-1][0]
    sampled = points[-1][0] - points[0][0]
    average = sampled / (len(points) - 1)
    if counter and result > 0 and points[0][1] >= 0:
        to_zero = sampled * (points[0][1] / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    if rate:
        result /= end - start
    return result


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in points)
    variance = sum((t - mean_t) ** 2 for t, _ in points)
    return covariance / variance if variance else 0.0


def _histogram_quantile(q: float, buckets: list[Sample]) -> list[Sample]:
    groups: dict[Labels, tuple[dict[str, str], list[tuple[float, float]]]] = {}
    for sample in buckets:
        labels = _without_name(sample.labels)
        bound = float(labels.pop("le", "nan"))
        groups.setdefault(_key(labels), (labels, []))[1].append((bound, sample.value))
    out = []
    for labels, items in groups.values():
        items.sort()
        if not items or items[-1][0] != math.inf or items[-1][1] == 0:
            out.append(Sample(labels, math.nan))
            continue
        rank = q * items[-1][1]
        index = next(i for i, (_, count) in enumerate(items) if count >= rank)
        if index == len(items) - 1:
            out.append(Sample(labels, items[-2][0] if len(items) > 1 else math.nan))
            continue
        lower, below = (items[index - 1][0], items[index - 1][1]) if index else (0.0, 0.0)
        upper, count = items[index]
        out.append(Sample(labels, lower + (upper - lower) * ((rank - below) / (count - below) if count > below else 0)))
    return out


# -- alert rules -------------------------------------------------------------------------------------
@dataclass
class Rule:
    name: str
    expr: str
    hold: float
    """The rule's ``for`` in seconds (unscaled)."""


def rules() -> dict[str, Rule]:
    """deploy/prometheus/alerts.yaml's rules by name."""
    found = {}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            found[rule["alert"]] = Rule(rule["alert"], rule["expr"], parse_duration(rule.get("for", "0s")))
    return found


def parse_duration(text: str) -> float:
    return sum(int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
               for number, unit in re.findall(r"(\d+)(ms|s|m|h|d)", text))


@dataclass
class AlertHistory:
    """One rule evaluated at every given time: when its expression returned something, and when (with
    which labels) it was firing."""

    rule: Rule
    evaluations: list[tuple[float, list[Sample]]]
    firing: list[tuple[float, dict[str, str]]]

    @property
    def fired(self) -> bool:
        return bool(self.firing)

    def fired_for(self, **labels: str) -> bool:
        """True when an alert whose labels include ``labels`` was firing."""
        return any(all(got.get(name) == value for name, value in labels.items()) for _, got in self.firing)

    def first_active(self, **labels: str) -> float | None:
        """When the expression first returned a series with ``labels`` (the alert became pending)."""
        return next((at for at, samples in self.evaluations
                     if any(all(s.labels.get(k) == v for k, v in labels.items()) for s in samples)), None)


def evaluate_rule(rule: Rule, evaluator: Evaluator, times: Iterable[float]) -> AlertHistory:
    """Evaluate ``rule`` at each time in ``times`` as Prometheus's rule manager does: an alert (per label
    set) is pending while the expression returns it, and firing once it has for ``for`` (scaled)."""
    hold = rule.hold * evaluator.scale
    since: dict[Labels, float] = {}
    evaluations, firing = [], []
    for at in times:
        result = evaluator(rule.expr, at)
        samples = result if isinstance(result, list) else ([Sample({}, result)] if result else [])
        current = {_key(_without_name(sample.labels)) for sample in samples}
        since = {key: since.get(key, at) for key in current}
        evaluations.append((at, samples))
        firing.extend((at, dict(key)) for key, started in since.items() if at - started >= hold)
    return AlertHistory(rule, evaluations, firing)


def stack_targets(metrics_urls: dict[str, str]) -> dict[str, Target]:
    """Scrape targets for ``podq.stack.Stack.metrics``: each service labelled as deploy/kubernetes labels its
    pods (``app``: podq-intake, podq-worker, podq-watcher) and by its name (``instance``)."""
    return {name: Target(url, {"job": "podq", "instance": name, "app": f"podq-{name.partition('-')[0]}"})
            for name, url in metrics_urls.items()}
