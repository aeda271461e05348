"""The create budget's controller: how a cluster's shared create rate follows the API server's answers.

Every worker reports what its creates met (:class:`BudgetFeedback`); a few times a second, and at
once on a push-back, it folds them into the cluster's shared state with :func:`next_state`, a pure
function of that state, the observation and the server's clock, in the spirit of TCP congestion
control (CUBIC's shape):

* **before any push-back** the rate doubles every ``doubling`` seconds while demand meets it
  (slow start), up to the ceiling (``PODQ_WORKER_CREATE_RATE``);
* **a push-back** (a 429; server errors or timeouts above ``error_share`` of the answers; create
  latency above ``latency_factor`` × its unloaded base + ``latency_slack``, i.e. the API server's
  queues are filling) records the rate the server accepted as the ``peak`` (what was offered less
  the share refused; for latency, the rate it answered over the last ``sample`` seconds, every
  worker's reports counted, but no less than ``latency_floor`` × the rate) and cuts to ``cut`` × it (``latency_cut`` for latency alone), at most
  once per ``hold`` seconds, since one overshoot is answered by many requests;
* **growth stops** (slow start or a probe) when the create latency rises above ``queue_factor`` ×
  its base + ``queue_slack``, before it is a push-back, as HyStart leaves slow start: the
  requests have begun to wait in the server, so the rate holds where it is and probing starts
  again from there (nothing is cut: a loaded machine shows the same latency);
* **after a cut** the rate climbs back to the peak within ``approach`` seconds, stays there for
  ``plateau`` seconds, then probes above it, slowly at first and faster the longer the server
  accepts (``peak × exp(probe_gain × t²)``), so a capacity that grew is found within seconds;
* **a Retry-After** pauses every worker's creates until it has passed (the reservations hold no
  slot before ``pause_until``), not only the one that was told, when the server refuses at least
  ``pause_share`` of what a report saw (it is overwhelmed: a capacity drop, a storm). A lone 429
  at the edge of a probe cuts the rate and only its own request waits the Retry-After: a shared
  second of silence for each would cost more capacity than the probe found;
* the rate grows only **while demand meets the budget** (a reservation had to wait within
  ``demand_window``): an idle cell does not inflate a budget it never tested.

The state lives in Redis (:class:`podq.broker.store.ratelimit.BudgetState`); two workers' updates
are a compare-and-set, so the one that loses reads again.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

from podq.broker.store.ratelimit import BudgetState, CreateBudget
from podq.shared import metrics

log = logging.getLogger(__name__)

@dataclass(frozen=True, kw_only=True)
class Law:
    """The controller's constants; ``ceiling`` and ``start`` come from the settings."""

    ceiling: float
    start: float
    floor: float = 1.0
    cut: float = 0.9
    latency_cut: float = 0.95
    hold: float = 1.0
    approach: float = 1.0
    plateau: float = 3.0
    probe_gain: float = 0.04
    doubling: float = 1.0
    latency_factor: float = 3.0
    latency_slack: float = 0.25
    queue_factor: float = 1.5
    latency_floor: float = 0.8
    queue_slack: float = 0.05
    demand_window: float = 1.0
    error_share: float = 0.05
    pause_share: float = 0.1
    sample: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Observation:
    """What one worker's creates met since its last report."""

    ok: int = 0
    """Creates the API server answered (created, 409, or refused for a reason of the pod's own)."""
    throttled: int = 0
    """429 answers."""
    errors: int = 0
    """5xx answers, timeouts and connection errors."""
    latency: float | None = None
    """The median latency of the answered creates (s)."""
    retry_after: float | None = None
    """The longest Retry-After among the 429s (s)."""

    @property
    def answers(self) -> int:
        return self.ok + self.throttled + self.errors


def next_state(state: BudgetState, seen: Observation, *, now: float, law: Law) -> BudgetState:
    """The budget's next state after ``seen``, at server time ``now``."""
    latency, base = state.latency, state.base_latency
    if seen.latency is not None:
        latency = seen.latency if latency <= 0 else 0.7 * latency + 0.3 * seen.latency
        # The base follows a faster server at once and a slower one slowly (a new normal, not a queue).
        base = seen.latency if base <= 0 or seen.latency < base else base + 0.002 * (seen.latency - base)
    pause_until = state.pause_until
    if seen.throttled and seen.retry_after and seen.throttled >= law.pause_share * seen.answers:
        pause_until = max(pause_until, now + seen.retry_after)
    state = dataclasses.replace(state, latency=latency, base_latency=base, pause_until=pause_until,
                                **_delivery(state, seen, now=now, law=law))
    push_back = _push_back(state, seen, law)
    if push_back and now - state.cut_at >= law.hold:
        # The rate the server took: what was offered less the share it refused; when it refuses
        # nothing but queues, what it answered over the last sample.
        if push_back == "latency":
            # What it answered, but never a cut of more than a fifth at once: the latency may be this
            # machine's, and what is answered follows what is offered.
            accepted = max(state.delivery_rate, law.latency_floor * state.rate) if state.delivery_rate else state.rate
        else:
            accepted = state.rate * seen.ok / seen.answers if seen.answers else state.rate
        peak = max(law.floor, min(state.rate, accepted))
        rate = max(law.floor, peak * (law.latency_cut if push_back == "latency" else law.cut))
        return dataclasses.replace(state, rate=rate, peak=peak, cut_at=now, epoch_at=now, epoch_rate=rate,
                                   reason=push_back)
    if push_back:
        return state  # the same overshoot's later answers: the cut is made
    if now - state.limited_at > law.demand_window:
        # Demand below the budget: hold the rate, and grow from here when demand returns.
        return dataclasses.replace(state, epoch_at=now, epoch_rate=state.rate, reason="idle")
    if state.epoch_at <= 0:
        state = dataclasses.replace(state, epoch_at=now, epoch_rate=state.rate)
    if state.reason in ("slow start", "probing") and _queueing(state, law):
        # The server starts to queue (as HyStart leaves slow start on a delay increase): growth stops
        # where it is, and probes again from there. Nothing is cut: a slow machine looks the same.
        return dataclasses.replace(state, peak=state.rate, epoch_at=now, epoch_rate=state.rate, reason="at peak")
    rate, reason = _grown(state, now - state.epoch_at, law)
    if rate >= law.ceiling:
        rate, reason = law.ceiling, "ceiling"
    return dataclasses.replace(state, rate=max(law.floor, rate), reason=reason)


def _delivery(state: BudgetState, seen: Observation, *, now: float, law: Law) -> dict[str, float]:
    """The running count of answered creates, and its rate over the last ``sample`` seconds."""
    delivered = state.delivered + seen.ok
    if state.sampled_at <= 0 or now < state.sampled_at:
        return {"delivered": delivered, "sampled_at": now, "sampled": delivered}
    if now - state.sampled_at < law.sample:
        return {"delivered": delivered}
    return {"delivered": delivered, "sampled_at": now, "sampled": delivered,
            "delivery_rate": (delivered - state.sampled) / (now - state.sampled_at)}


def _queueing(state: BudgetState, law: Law) -> bool:
    """The create latency has risen clearly above its base: requests have begun to wait in the server."""
    return state.base_latency > 0 and state.latency > state.base_latency * law.queue_factor + law.queue_slack


def _push_back(state: BudgetState, seen: Observation, law: Law) -> str | None:
    if seen.throttled:
        return "throttled"
    if seen.errors and seen.errors >= law.error_share * seen.answers:
        return "server errors"
    if seen.latency is not None and state.base_latency > 0 and \
            state.latency > state.base_latency * law.latency_factor + law.latency_slack:
        return "latency"
    return None


def _grown(state: BudgetState, elapsed: float, law: Law) -> tuple[float, str]:
    """The rate ``elapsed`` seconds into the current growth, and what the growth is doing."""
    start = max(law.floor, state.epoch_rate)
    if state.peak <= 0:
        return start * 2 ** (elapsed / law.doubling), "slow start"
    if start < state.peak:
        if elapsed < law.approach:
            return state.peak - (state.peak - start) * (1 - elapsed / law.approach) ** 3, "recovering"
        if elapsed < law.approach + law.plateau:
            return state.peak, "at peak"
        probing = elapsed - law.approach - law.plateau
        return state.peak * math.exp(law.probe_gain * probing ** 2), "probing"
    return start * math.exp(law.probe_gain * elapsed ** 2), "probing"


OK, THROTTLED, ERROR = "ok", "throttled", "error"


class BudgetFeedback:
    """A worker process's reports to its cluster's budget; thread-safe, called by every create.

    Outcomes are gathered and folded into the shared state every ``interval`` seconds (a quarter
    of it after the last report on a push-back), by the create thread that finds the report due:
    no thread of its own.
    """

    def __init__(self, budget: CreateBudget, law: Law, *, interval: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self.law = law
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._flushing = False
        self._last = clock()
        self._counts = {OK: 0, THROTTLED: 0, ERROR: 0}
        self._latencies: list[float] = []
        self._retry_after: float | None = None

    def observe(self, outcome: str, *, latency: float | None = None, retry_after: float | None = None) -> None:
        """Record one create's outcome (``OK``, ``THROTTLED`` or ``ERROR``); report when due."""
        if not self.budget.enabled:
            return
        with self._lock:
            self._counts[outcome] += 1
            if latency is not None and outcome == OK and len(self._latencies) < 4096:
                self._latencies.append(latency)
            if retry_after is not None:
                self._retry_after = max(retry_after, self._retry_after or 0.0)
            # Due every `interval`, and a quarter of it after the last report on a push-back: soon,
            # yet over enough answers that the share refused means something.
            since = self._clock() - self._last
            if self._flushing or since < (self.interval if outcome == OK else self.interval / 4):
                return
            seen = self._take()
        self._report(seen)

    def _take(self) -> Observation:
        seen = Observation(ok=self._counts[OK], throttled=self._counts[THROTTLED], errors=self._counts[ERROR],
                           latency=statistics.median(self._latencies) if self._latencies else None,
                           retry_after=self._retry_after)
        self._counts = {OK: 0, THROTTLED: 0, ERROR: 0}
        self._latencies = []
        self._retry_after = None
        self._flushing = True
        self._last = self._clock()
        return seen

    def _report(self, seen: Observation) -> None:
        try:
            for _ in range(5):
                state, now = self.budget.read()
                new = next_state(state, seen, now=now, law=self.law)
                if new == state or self.budget.write(state, new):
                    if new.cut_at != state.cut_at:
                        metrics.BUDGET_CUTS.labels(self.budget.cluster, new.reason).inc()
                        log.info("create budget %s: %s: %.1f -> %.1f creates/s (the server accepted %.1f)%s",
                                 self.budget.cluster, new.reason, state.rate, new.rate, new.peak,
                                 f"; paused {new.pause_until - now:.2f} s" if new.pause_until > now else "")
                    return
        except Exception as exc:  # noqa: BLE001 - the budget keeps its last state; creates go on
            log.warning("create budget %s: could not report %s: %s: %s", self.budget.cluster, seen,
                        type(exc).__name__, exc)
        finally:
            with self._lock:
                self._flushing = False
