"""Fair shares between schedulers (broker/intake/shares.py): the settings' tables, stride planning, the window."""
from __future__ import annotations

import pytest

from podq.broker.intake.shares import Table, plan, window
from podq.broker.store.waiting import Line
from podq.shared.errors import SettingsError

EQUAL = Table.parse((), setting="W", default=1.0, minimum=0.001)
NO_CAPS = Table.parse((), setting="C", default=None, minimum=1)


def test_a_table_matches_an_exact_id_first_then_the_longest_prefix():
    table = Table.parse(("team-a=3", "team-*=2", "team-a-*=5", "prod=0.5"), setting="W", default=1.0, minimum=0.001)
    assert table.get("team-a") == 3.0
    assert table.get("team-a-etl") == 5.0
    assert table.get("team-b") == 2.0
    assert table.get("prod") == 0.5 and table.get("production") == 1.0


@pytest.mark.parametrize("entry", ["team-a", "=3", "team-a=", "team-a=x", "team-a=0", "team-a=-1"])
def test_a_bad_entry_is_refused_naming_the_setting_and_the_entry(entry):
    with pytest.raises(SettingsError, match=rf"PODQ_INTAKE_SCHEDULER_WEIGHTS: '{entry}'"):
        Table.parse((entry,), setting="PODQ_INTAKE_SCHEDULER_WEIGHTS", default=1.0, minimum=0.001)


def test_a_scheduler_alone_gets_all_the_room():
    assert plan([Line(scheduler="a", waiting=20_000, pass_=0.0)], room=64, weights=EQUAL, caps=NO_CAPS) == {"a": 64}


def test_equal_weights_share_equally_whatever_the_backlogs():
    lines = [Line(scheduler="a", waiting=20_000, pass_=0.0), Line(scheduler="b", waiting=100, pass_=0.0)]
    assert plan(lines, room=40, weights=EQUAL, caps=NO_CAPS) == {"a": 20, "b": 20}


def test_a_short_line_gives_its_unused_share_to_the_others():
    lines = [Line(scheduler="a", waiting=20_000, pass_=0.0), Line(scheduler="b", waiting=3, pass_=0.0)]
    assert plan(lines, room=40, weights=EQUAL, caps=NO_CAPS) == {"a": 37, "b": 3}


def test_weights_set_the_proportions():
    weights = Table.parse(("a=3",), setting="W", default=1.0, minimum=0.001)
    lines = [Line(scheduler="a", waiting=1000, pass_=0.0), Line(scheduler="b", waiting=1000, pass_=0.0)]
    assert plan(lines, room=400, weights=weights, caps=NO_CAPS) == {"a": 300, "b": 100}


def test_the_lowest_pass_goes_first_so_service_evens_out_over_steps():
    lines = [Line(scheduler="a", waiting=1000, pass_=50.0), Line(scheduler="b", waiting=1000, pass_=40.0)]
    assert plan(lines, room=10, weights=EQUAL, caps=NO_CAPS) == {"b": 10}
    assert plan(lines, room=30, weights=EQUAL, caps=NO_CAPS) == {"a": 10, "b": 20}


def test_a_cap_bounds_a_schedulers_jobs_in_flight():
    caps = Table.parse(("a=10",), setting="C", default=None, minimum=1)
    lines = [Line(scheduler="a", waiting=1000, pass_=0.0, in_flight=7), Line(scheduler="b", waiting=1000, pass_=0.0)]
    assert plan(lines, room=50, weights=EQUAL, caps=caps) == {"a": 3, "b": 47}
    full = [Line(scheduler="a", waiting=1000, pass_=0.0, in_flight=12)]
    assert plan(full, room=50, weights=EQUAL, caps=caps) == {}


def test_the_window_is_the_budget_over_ahead_plus_the_base_latency_at_least_the_floor():
    assert window(rate=200.0, latency=0.1, ahead=0.4, floor=16) == 100
    assert window(rate=10.0, latency=0.0, ahead=0.4, floor=16) == 16
