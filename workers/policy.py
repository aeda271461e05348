"""The API error policy's arithmetic: budgets, backoff with jitter, and what to do next.

Pure functions, so the whole table is unit-tested without a cluster:

* 429 waits what ``Retry-After`` says (backoff when it says nothing);
* 500/502/503/504, timeouts and connection errors back off exponentially with full
  jitter, ``base × 2^attempt`` capped at ``cap``;
* a wait that does not fit in what is left of the delivery's budget goes back
  through the broker's delayed set instead (never a Celery countdown);
* anything else (403, 404, 409 from another job, 422, …) is final.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from podq.shared.settings import WorkerSettings

from .errors import KubeApiError, TooManyRequests

BACKOFF_BASE = 0.1
BACKOFF_CAP = 10.0
MIN_DELAY = 1.0


def retry_budget(settings: WorkerSettings) -> float:
    """Seconds one delivery may spend on retries: the setting, never over a third of the visibility timeout."""
    ceiling = settings.visibility_timeout / 3
    budget = settings.retry_budget
    return budget if 0 < budget <= ceiling else ceiling


def create_timeout(*, request_timeout: float, budget: float) -> float:
    """The timeout of one create call: short enough to leave room for a read and a retry."""
    return max(0.2, min(request_timeout, budget / 3))


def backoff(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP,
            rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff for retry number ``attempt`` (1, 2, …)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Decision:
    """``retry`` after ``wait`` s in this delivery; ``delay`` by ``wait`` s via the broker; or ``fail``."""

    action: str
    wait: float = 0.0


RETRY = "retry"
DELAY = "delay"
FAIL = "fail"


def decide(error: KubeApiError, *, attempt: int, remaining: float, rng: random.Random | None = None) -> Decision:
    """What to do after ``error`` on retry number ``attempt`` with ``remaining`` seconds of budget."""
    if not error.retryable:
        return Decision(FAIL)
    if isinstance(error, TooManyRequests) and error.retry_after is not None:
        wait = error.retry_after
    else:
        wait = backoff(attempt, rng=rng)
    if wait < remaining:
        return Decision(RETRY, wait)
    return Decision(DELAY, max(wait, MIN_DELAY))
