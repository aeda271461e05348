"""The API error classification table and the retry policy's decisions."""
from __future__ import annotations

import random

import pytest

from podq.shared.settings import WorkerSettings
from podq.workers import errors
from podq.workers.policy import DELAY, FAIL, RETRY, backoff, create_timeout, decide, retry_budget


@pytest.mark.parametrize("status, message, cls, retryable", [
    (0, "", errors.TransportError, True),
    (None, "", errors.TransportError, True),
    (400, "bad", errors.InvalidError, False),
    (401, "who", errors.PermanentApiError, False),
    (403, 'pods is forbidden: User "x" cannot create', errors.ForbiddenError, False),
    (403, 'pods "p" is forbidden: exceeded quota: compute', errors.QuotaExceeded, True),
    (404, 'namespaces "nope" not found', errors.NotFoundError, False),
    (409, "already exists", errors.ConflictError, False),
    (410, "gone", errors.PermanentApiError, False),
    (422, "invalid", errors.InvalidError, False),
    (429, "slow down", errors.TooManyRequests, True),
    (500, "", errors.ServerError, True),
    (501, "", errors.PermanentApiError, False),
    (502, "", errors.ServerError, True),
    (503, "", errors.ServerError, True),
    (504, "", errors.ServerError, True),
])
def test_every_status_maps_to_one_class(status, message, cls, retryable):
    error = errors.error_for(status, reason="R", message=message)
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.message == message


def test_reason_and_retry_after_are_kept():
    error = errors.error_for(429, reason="TooManyRequests", message="m", retry_after=3.0)
    assert (error.reason, error.retry_after, error.status) == ("TooManyRequests", 3.0, 429)
    assert errors.parse_retry_after("2") == 2.0
    assert errors.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert errors.parse_retry_after(None) is None


def test_429_honours_retry_after_and_delays_when_it_does_not_fit():
    error = errors.error_for(429, message="", retry_after=2.0)
    assert decide(error, attempt=1, remaining=10) == (decision := decide(error, attempt=1, remaining=10))
    assert decision.action == RETRY and decision.wait == 2.0
    later = decide(error, attempt=1, remaining=1.5)
    assert later.action == DELAY and later.wait == 2.0


def test_server_errors_back_off_with_jitter_and_fatal_errors_fail():
    rng = random.Random(1)
    waits = [decide(errors.error_for(503), attempt=n, remaining=100, rng=rng).wait for n in range(1, 8)]
    assert all(w > 0 for w in waits) and waits[-1] > waits[0]
    assert decide(errors.error_for(503), attempt=20, remaining=0.5).action == DELAY
    for status in (403, 404, 409, 422):
        assert decide(errors.error_for(status), attempt=1, remaining=100).action == FAIL


def test_backoff_stays_within_its_bounds():
    rng = random.Random(7)
    for attempt in range(1, 30):
        ceiling = min(10.0, 0.1 * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff(attempt, rng=rng) <= ceiling


def test_retry_budget_is_at_most_a_third_of_the_visibility_timeout():
    assert retry_budget(WorkerSettings(visibility_timeout=300)) == 100
    assert retry_budget(WorkerSettings(visibility_timeout=300, retry_budget=20)) == 20
    assert retry_budget(WorkerSettings(visibility_timeout=6, retry_budget=20)) == 2
    assert create_timeout(request_timeout=30, budget=100) == 30
    assert create_timeout(request_timeout=30, budget=3) == 1
