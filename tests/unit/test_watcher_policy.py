"""Reconciler candidates, lease keeper decisions and the health check: pure logic."""
from __future__ import annotations

import json
import os
import time

from podq.broker.store.ledger import LedgerEntry
from podq.shared.settings import WatcherSettings
from podq.shared.states import LedgerState, State
from podq.watcher.health import Health, check
from podq.watcher.lease import LeaseKeeper
from podq.watcher.reconciler import candidate

SETTINGS = WatcherSettings(lost_after=600, created_grace=30)


def brief(state, *, age: float, terminal: str | None = None, pod: str | None = "p") -> LedgerEntry:
    return LedgerEntry(job_id="j", state=state, terminal_state=terminal, scheduler_id="s", namespace=None,
                       pod_name=pod, updated_at=1000.0 - age)


def test_reconciler_candidates():
    assert candidate(brief(LedgerState.ACCEPTED, age=601), now=1000, settings=SETTINGS) is State.LOST
    assert candidate(brief(LedgerState.DISPATCHED, age=100), now=1000, settings=SETTINGS) is None
    assert candidate(brief(LedgerState.CREATED, age=31), now=1000, settings=SETTINGS) is State.LOST
    assert candidate(brief(LedgerState.CREATED, age=5), now=1000, settings=SETTINGS) is None
    assert candidate(brief(LedgerState.REVOKED, age=31), now=1000, settings=SETTINGS) is State.REVOKED
    assert candidate(brief(LedgerState.TERMINAL, age=10**6, terminal="succeeded"), now=1000,
                     settings=SETTINGS) is None
    assert candidate(brief(LedgerState.REVOKED, age=10**6, terminal="revoked"), now=1000, settings=SETTINGS) is None
    assert candidate(brief(LedgerState.ACCEPTED, age=10**6, pod=None), now=1000, settings=SETTINGS) is None


class FakeStore:
    """Answers ``hold`` from a script of replies (what lease.lua would say)."""

    def __init__(self, replies):
        self.replies = list(replies)

    def hold(self, scope, *, holder, token, ttl, alive=None):
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def keeper(replies, ttl=10.0):
    events = []
    lease = LeaseKeeper(FakeStore(replies), scopes=["ns"], holder="me", ttl=ttl,
                        on_gain=lambda scope, token: events.append(("gain", token)),
                        on_loss=lambda scope: events.append(("loss",)))
    return lease, events


def test_lease_gain_renew_and_loss():
    lease, events = keeper([(False, "1:other"), (True, "2:me"), (True, "2:me"), (False, "3:other")])
    assert lease.step() is False
    assert lease.step() is True and lease.tokens == {"ns": "2:me"}
    lease.step()
    lease.step()
    assert events == [("gain", "2:me"), ("loss",)] and lease.tokens == {}


def test_lease_with_a_new_token_restarts_the_scope():
    lease, events = keeper([(True, "1:me"), (True, "4:me")])
    lease.step()
    lease.step()
    assert events == [("gain", "1:me"), ("loss",), ("gain", "4:me")]


def test_lease_steps_down_when_it_cannot_renew_for_a_ttl():
    lease, events = keeper([(True, "1:me"), ConnectionError("down")], ttl=0.0)
    lease.step()
    time.sleep(0.01)  # the clock must move past the zero ttl: time passing is what is tested
    try:
        lease.step()
    except ConnectionError:
        pass
    assert events == [("gain", "1:me"), ("loss",)]


def test_health_check(tmp_path):
    path = str(tmp_path / "health.json")
    assert check(path, max_age=30, progress_limit=60)[0] is False
    health = Health(path, instance="w1")
    health.leading("ns", True)
    health.write()
    healthy, why = check(path, max_age=30, progress_limit=60)
    assert healthy and "ns" in why
    report = json.loads((tmp_path / "health.json").read_text())
    report["scopes"]["ns"]["progress"] = time.time() - 120
    (tmp_path / "health.json").write_text(json.dumps(report))
    assert check(path, max_age=30, progress_limit=60)[0] is False
    report["scopes"] = {}
    report["time"] = time.time() - 100
    (tmp_path / "health.json").write_text(json.dumps(report))
    assert "old" in check(path, max_age=30, progress_limit=60)[1]
    report["time"], report["pid"] = time.time(), 2 ** 22 + 12345
    (tmp_path / "health.json").write_text(json.dumps(report))
    assert "gone" in check(path, max_age=30, progress_limit=60)[1]
    report["pid"] = os.getpid()
    (tmp_path / "health.json").write_text(json.dumps(report))
    assert check(path, max_age=30, progress_limit=60)[0] is True
