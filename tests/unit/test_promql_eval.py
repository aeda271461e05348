"""The test suite's PromQL evaluator (tests/support/prometheus.py) against Prometheus's documented semantics."""
from __future__ import annotations

import pytest

from tests.support.prometheus import Evaluator, Rule, Store, evaluate_rule, rules
from tests.support.promql import expressions


def store_with(series: dict[tuple[tuple[str, str], ...], list[tuple[float, float | None]]]) -> Store:
    store = Store()
    for labels, samples in series.items():
        for at, value in samples:
            store.add(dict(labels), at, value)
    return store


def values(result) -> dict[tuple, float]:
    return {tuple(sorted(sample.labels.items())): sample.value for sample in result}


COUNTER = (("__name__", "c_total"), ("outcome", "created"))


def test_increase_of_a_series_that_starts_at_zero_is_exact():
    # Scraped every 10 s from 0; the range starts well before the first sample: no extrapolation past 0.
    store = store_with({COUNTER: [(100 + 10 * i, float(v)) for i, v in enumerate([0, 0, 3, 7, 12])]})
    assert values(Evaluator(store)("increase(c_total[5m])", 140)) == {(("outcome", "created"),): 12.0}


def test_increase_without_the_zero_sample_misses_what_came_before_the_first_sample():
    # The series appears only at its first increments (10 so far): Prometheus cannot see those 10, and
    # extrapolates only half an interval back, so increase() says 2.5 where 12 happened.
    store = store_with({COUNTER: [(120, 10.0), (130, 11.0), (140, 12.0)]})
    (value,) = values(Evaluator(store)("increase(c_total[5m])", 140)).values()
    assert value == pytest.approx(2 * (20 + 5) / 20)


def test_increase_counts_across_a_counter_reset_and_extrapolates_to_the_window():
    # 8 -> (restart) 2 -> 4: an increase of 4 over 20 s of samples, extrapolated to the 30 s window.
    store = store_with({COUNTER: [(10, 8.0), (20, 2.0), (30, 4.0)]})
    (value,) = values(Evaluator(store)("increase(c_total[30s])", 30)).values()
    assert value == pytest.approx(4 * 30 / 20)


def test_a_stale_series_disappears_from_instant_selectors():
    store = store_with({(("__name__", "g"), ("instance", "a")): [(0, 1.0), (5, None)],
                        (("__name__", "g"), ("instance", "b")): [(0, 2.0), (5, 2.0)]})
    assert values(Evaluator(store)("g", 6)) == {(("__name__", "g"), ("instance", "b")): 2.0}
    assert Evaluator(store)("absent(g{instance=\"a\"})", 6)[0].labels == {"instance": "a"}
    assert Evaluator(store)("absent(g{instance=\"b\"})", 6) == []


def test_aggregations_comparisons_and_set_operators():
    store = store_with({
        (("__name__", "lag"), ("scheduler", "s1"), ("instance", "i")): [(0, 5.0)],
        (("__name__", "lag"), ("scheduler", "s1"), ("instance", "w")): [(0, 7.0)],
        (("__name__", "lag"), ("scheduler", "s2"), ("instance", "i")): [(0, 0.0)],
        (("__name__", "read"), ("scheduler", "s1"), ("instance", "i")): [(0, 1.0)],
    })
    ev = Evaluator(store)
    assert values(ev("max by (scheduler) (lag)", 1)) == {(("scheduler", "s1"),): 7.0, (("scheduler", "s2"),): 0.0}
    assert values(ev("max by (scheduler) (lag) > 0", 1)) == {(("scheduler", "s1"),): 7.0}
    assert values(ev("max by (scheduler) (lag) > bool 0", 1)) == {(("scheduler", "s1"),): 1.0,
                                                                   (("scheduler", "s2"),): 0.0}
    assert ev("max by (scheduler) (lag) > 0 unless on(scheduler) max by (scheduler) (read) > 0", 1) == []
    assert values(ev("sum without (instance) (lag)", 1)) == {(("scheduler", "s1"),): 12.0, (("scheduler", "s2"),): 0.0}
    assert values(ev("count(lag) - 1", 1)) == {(): 2.0}
    assert len(ev("max(lag) < 1 and on() count(lag) > 0", 1)) == 0
    assert ev("time()", 42.0) == 42.0


def test_histogram_quantile_interpolates_within_a_bucket():
    buckets = {(("__name__", "h_bucket"), ("le", le)): [(0, 0.0), (10, count)]
               for le, count in (("0.1", 50.0), ("0.2", 100.0), ("+Inf", 100.0))}
    (value,) = values(Evaluator(store_with(buckets))("histogram_quantile(0.75, sum by (le) (rate(h_bucket[20s])))",
                                                     10)).values()
    assert value == pytest.approx(0.15)


def test_a_rule_fires_only_after_its_condition_held_for_its_for_duration_scaled():
    store = store_with({(("__name__", "g"),): [(t, 1.0 if 10 <= t < 30 else 0.0) for t in range(0, 40)]})
    rule = Rule("R", "g > 0", hold=600.0)               # for: 10m, compressed 60 times: 10 s
    history = evaluate_rule(rule, Evaluator(store, scale=1 / 60), range(0, 40))
    assert history.first_active() == 10 and history.firing[0][0] == 20 and history.firing[-1][0] == 29
    assert not evaluate_rule(Rule("R", "g > 0", hold=1800.0), Evaluator(store, scale=1 / 60), range(0, 40)).fired


def test_every_shipped_rule_and_panel_is_within_the_evaluators_subset():
    """Each rule of deploy/prometheus/alerts.yaml and each dashboard expression evaluates (on an empty store)."""
    for rule in rules().values():
        result = Evaluator(Store(), scale=1 / 60)(rule.expr, 1000.0)
        assert isinstance(result, list), rule.name
        assert rule.hold >= 0, rule.name
    for where, expression in expressions():
        Evaluator(Store())(expression, 1000.0)
