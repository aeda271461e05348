"""The create budget's controller (podq.workers.budget.next_state): a pure function, tested step by step
and in a closed loop with a fluid model of an API server that accepts C creates/s and answers the rest 429."""
from __future__ import annotations

import dataclasses

import pytest

from podq.broker.store.ratelimit import BudgetState
from podq.workers.budget import Law, Observation, next_state

LAW = Law(ceiling=1000.0, start=100.0)
NOW = 1_000_000.0


def demanding(state: BudgetState, now: float) -> BudgetState:
    """The state as the reservations leave it when demand meets the budget (a reservation waited just now)."""
    return dataclasses.replace(state, limited_at=now)


def test_slow_start_doubles_every_second_of_demand_up_to_the_ceiling():
    state = next_state(demanding(BudgetState(rate=100.0), NOW), Observation(ok=10), now=NOW, law=LAW)
    assert state.rate == pytest.approx(100.0) and state.reason == "slow start"
    state = next_state(demanding(state, NOW + 1), Observation(ok=10), now=NOW + 1, law=LAW)
    assert state.rate == pytest.approx(200.0)
    state = next_state(demanding(state, NOW + 2.5), Observation(ok=10), now=NOW + 2.5, law=LAW)
    assert state.rate == pytest.approx(100.0 * 2 ** 2.5)
    state = next_state(demanding(state, NOW + 10), Observation(ok=10), now=NOW + 10, law=LAW)
    assert (state.rate, state.reason) == (1000.0, "ceiling")


def test_without_demand_the_rate_holds_and_growth_starts_again_from_it():
    state = BudgetState(rate=150.0, limited_at=NOW - 5)
    idle = next_state(state, Observation(ok=3), now=NOW, law=LAW)
    assert (idle.rate, idle.reason, idle.epoch_at, idle.epoch_rate) == (150.0, "idle", NOW, 150.0)
    later = next_state(idle, Observation(ok=3), now=NOW + 30, law=LAW)
    assert later.rate == 150.0 and later.reason == "idle", "30 s without demand grow nothing"
    back = next_state(demanding(later, NOW + 31), Observation(ok=3), now=NOW + 31, law=LAW)
    assert back.rate == pytest.approx(300.0), "growth starts from the held rate when demand returns"


def test_a_429_cuts_to_a_share_of_what_the_server_accepted_and_pauses_everyone():
    state = demanding(BudgetState(rate=400.0, version=3), NOW)
    cut = next_state(state, Observation(ok=30, throttled=10, retry_after=1.0), now=NOW, law=LAW)
    assert cut.peak == pytest.approx(300.0), "three quarters of 400/s were accepted"
    assert cut.rate == pytest.approx(300.0 * LAW.cut)
    assert (cut.reason, cut.cut_at, cut.pause_until) == ("throttled", NOW, NOW + 1.0)
    # The same overshoot's later answers: no second cut within the hold, but the pause follows the latest Retry-After.
    again = next_state(cut, Observation(ok=5, throttled=20, retry_after=2.0), now=NOW + 0.5, law=LAW)
    assert again.rate == cut.rate and again.pause_until == NOW + 2.5
    # A lone 429 among many accepted creates (the edge of a probe) cuts but pauses nobody.
    lone = next_state(demanding(BudgetState(rate=400.0), NOW), Observation(ok=99, throttled=1, retry_after=1.0),
                      now=NOW, law=LAW)
    assert lone.reason == "throttled" and lone.pause_until == 0.0
    # Past the hold a new push-back cuts again.
    third = next_state(again, Observation(ok=10, throttled=10), now=NOW + 1.5, law=LAW)
    assert third.rate == pytest.approx(cut.rate * 0.5 * LAW.cut)


def test_after_a_cut_the_rate_recovers_to_the_peak_stays_then_probes_above_it():
    cut = BudgetState(rate=85.0, peak=100.0, cut_at=NOW, epoch_at=NOW, epoch_rate=85.0, reason="throttled")
    seen = Observation(ok=10)
    halfway = next_state(demanding(cut, NOW + LAW.approach / 2), seen, now=NOW + LAW.approach / 2, law=LAW)
    assert halfway.reason == "recovering" and 85.0 < halfway.rate < 100.0
    assert halfway.rate > 85.0 + (100.0 - 85.0) / 2, "concave: most of the way back in the first half"
    at_peak = next_state(demanding(cut, NOW + LAW.approach + 1), seen, now=NOW + LAW.approach + 1, law=LAW)
    assert (at_peak.rate, at_peak.reason) == (100.0, "at peak")
    probe_at = NOW + LAW.approach + LAW.plateau
    early = next_state(demanding(cut, probe_at + 1), seen, now=probe_at + 1, law=LAW)
    late = next_state(demanding(cut, probe_at + 8), seen, now=probe_at + 8, law=LAW)
    assert early.reason == "probing" and 100.0 < early.rate < 105.0, "slowly at first"
    assert late.rate > 1000.0 - 1e-9, "then fast: a capacity that grew is found (here up to the ceiling)"


def test_growth_stops_where_the_server_starts_to_queue():
    state = demanding(BudgetState(rate=400.0, reason="slow start", epoch_at=NOW - 2, epoch_rate=100.0,
                                  base_latency=0.03, latency=0.03, delivery_rate=210.0), NOW)
    queued = next_state(state, Observation(ok=50, latency=0.4), now=NOW, law=LAW)
    assert (queued.reason, queued.rate, queued.peak, queued.epoch_at) == ("at peak", 400.0, 400.0, NOW)
    calm = next_state(state, Observation(ok=50, latency=0.03), now=NOW, law=LAW)
    assert calm.reason == "slow start" and calm.rate == pytest.approx(400.0)


def test_server_errors_cut_only_above_their_share_and_latency_cuts_gently():
    state = demanding(BudgetState(rate=200.0, base_latency=0.02, latency=0.02), NOW)
    few = next_state(state, Observation(ok=100, errors=2, latency=0.02), now=NOW, law=LAW)
    assert few.reason == "slow start"
    many = next_state(state, Observation(ok=10, errors=5, latency=0.02), now=NOW, law=LAW)
    assert many.reason == "server errors" and many.rate < 200.0
    queued = next_state(dataclasses.replace(state, latency=1.0), Observation(ok=50, latency=1.0), now=NOW, law=LAW)
    assert queued.reason == "latency" and queued.rate == pytest.approx(200.0 * LAW.latency_cut)
    assert queued.base_latency == pytest.approx(0.02 + 0.002 * 0.98), "the base drifts up slowly"
    # The server queues what it cannot take: the cut is to what it answered over the last second.
    answered = dataclasses.replace(state, latency=1.0, delivery_rate=170.0)
    cut = next_state(answered, Observation(ok=50, latency=1.0), now=NOW, law=LAW)
    assert cut.reason == "latency" and cut.peak == 170.0 and cut.rate == pytest.approx(170.0 * LAW.latency_cut)
    # But never more than a fifth at once: what is answered follows what is offered.
    starved = next_state(dataclasses.replace(answered, delivery_rate=20.0), Observation(ok=5, latency=1.0),
                         now=NOW, law=LAW)
    assert starved.peak == pytest.approx(160.0)


def test_the_delivery_rate_counts_every_workers_answers_over_a_second():
    state = BudgetState(rate=100.0)
    for step in range(9):   # two workers, each reporting 20 answers every quarter second
        state = next_state(state, Observation(ok=20), now=NOW + step * 0.125, law=LAW)
    assert state.delivered == 180
    assert state.delivery_rate == pytest.approx(160.0), "160 answers in the first second"




def closed_loop(law: Law, capacities: list[tuple[float, float]], *, step: float = 0.05, report: float = 0.25):
    """Run the controller against a :class:`FluidServer` whose capacity follows ``capacities``
    ((until, C) pairs); returns per step (time, offered, accepted, throttled)."""
    state, now, trace = BudgetState(rate=law.start), NOW, []
    pending, carry = Observation(), (0.0, 0.0)
    next_report = now + report
    end = NOW + capacities[-1][0]
    while now < end:
        capacity = next(c for until, c in capacities if now - NOW < until)
        offered = 0.0 if now < state.pause_until else state.rate * step
        accepted = min(offered, capacity * step)
        throttled = offered - accepted
        trace.append((now - NOW, offered / step, accepted / step, throttled / step))
        # Whole requests: the fractions carry over to the next step.
        carry = (carry[0] + accepted, carry[1] + throttled)
        whole = (int(carry[0]), int(carry[1]))
        carry = (carry[0] - whole[0], carry[1] - whole[1])
        pending = Observation(ok=pending.ok + whole[0], throttled=pending.throttled + whole[1],
                              latency=0.025, retry_after=1.0 if whole[1] else pending.retry_after)
        if offered:
            state = dataclasses.replace(state, limited_at=now)  # a backlog: demand always meets the budget
        # A worker reports every `report` seconds, and a quarter of that after its last report on a 429.
        if now >= next_report or (pending.throttled and now >= next_report - report * 0.75):
            state = next_state(state, pending, now=now, law=law)
            pending, next_report = Observation(), now + report
        now += step
    return trace


def window(trace, start: float, end: float) -> tuple[float, float]:
    """Goodput (accepted/s) and the share of creates answered 429 between ``start`` and ``end`` seconds."""
    rows = [row for row in trace if start <= row[0] < end]
    accepted = sum(row[2] for row in rows) / len(rows)
    offered = sum(row[1] for row in rows) / len(rows)
    return accepted, (offered - accepted) / offered if offered else 0.0


@pytest.mark.parametrize("capacity", [100.0, 400.0])
def test_closed_loop_goodput_at_the_limit(capacity):
    trace = closed_loop(LAW, [(120.0, capacity)])
    goodput, throttled = window(trace, 10.0, 120.0)
    assert goodput >= 0.95 * capacity, (goodput, throttled)
    assert throttled <= 0.02


def test_closed_loop_follows_a_tenfold_drop_and_the_rise_back():
    trace = closed_loop(LAW, [(40.0, 400.0), (80.0, 40.0), (140.0, 400.0)])
    _, throttled = window(trace, 50.0, 80.0)
    assert throttled < 0.05, "429s under 5 % within 10 s of the drop"
    goodput, _ = window(trace, 110.0, 140.0)
    assert goodput >= 0.9 * 400.0, "90 % of the new capacity within 30 s of the rise"
