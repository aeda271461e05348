"""`podq status`'s screen and JSON from one reading: the exact totals, a scope whose leader stopped renewing,
and the processes alive by their own liveness records (pure rendering, no Redis)."""
from __future__ import annotations

from rich.console import Console

from podq.broker.store.overview import Overview, ScopeFigures
from podq.broker.store.stats import StreamStats
from podq.commands.status import render
from podq.status import Snapshot, as_json

TOTALS = {"accepted": 7, "dispatched": 7, "created": 6, "ended:succeeded": 4, "ended:failed": 1,
          "trim_unread:podq:jobs": 0}


def snapshot() -> Snapshot:
    figures = Overview(at=1000.0, queue_messages=0, in_flight=1, delayed=0,
                       jobs=StreamStats(stream="podq:jobs", length=7, groups=()), jobs_lag=0, jobs_pending=0, dead=0,
                       schedulers=(), scopes=(ScopeFigures(scope="default", leader=None, lease_holder="3:watcher-a",
                                                           lease_ttl=7.0),),
                       live={"intake": ("intake-1",), "worker": (), "watcher": ()})
    return Snapshot(overview=figures, totals=TOTALS, workers=(), taken=0.0)


def test_the_screen_shows_totals_a_silent_leader_and_who_is_alive():
    console = Console(record=True, width=160, color_system=None)
    console.print(render(snapshot(), None))
    screen = console.export_text()
    assert "totals: 7 accepted  7 dispatched  6 pods created  ended: 1 failed  0 lost  0 revoked  4 succeeded" in screen
    assert "NO LEADER (3:watcher-a stopped renewing)" in screen
    assert "intake: 1  worker: 0  watcher: 0" in screen


def test_the_json_has_every_total_and_the_live_processes():
    reading = as_json(snapshot(), None)
    assert reading["totals"] == {"accepted": 7, "dispatched": 7, "created": 6,
                                 "ended": {"failed": 1, "lost": 0, "revoked": 0, "succeeded": 4}}
    assert reading["live"] == {"intake": ["intake-1"], "worker": [], "watcher": []}
    (scope,) = reading["watchers"]
    assert scope["leader"] is None and scope["lease_holder"] == "3:watcher-a"
