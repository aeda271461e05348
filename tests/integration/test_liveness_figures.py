"""What `podq status` and the gauges say about liveness: a scope is leaderless as soon as its leader stops
renewing (its lease still runs), and intake and watcher processes are seen by their own liveness records."""
from __future__ import annotations

from podq.broker.intake.housekeeping import Housekeeping
from podq.broker.store.gauges import export
from podq.broker.store import counters
from podq.broker.store.overview import overview
from podq.shared import metrics
from tests.support import wait_for
from tests.support.watcher import environment


def scope_figures(client, name: str):
    return next((scope for scope in overview(client).scopes if scope.scope == name), None)


def test_a_scope_is_leaderless_as_soon_as_its_leader_stops_renewing(redis_client, redis_url, kubesim, tmp_path):
    with environment(redis_client, redis_url, kubesim, tmp_path) as env:
        # A lease of 60 s renewed every 0.5 s: the scope counts as led for 2 s after each renewal.
        with env.watcher(instance="first", lease_ttl=60.0, lease_poll=0.5) as watcher:
            led = wait_for(lambda: (scope := scope_figures(redis_client, "default")) and scope.leader and scope,
                           timeout=30, message="the watcher to lead the scope")
            assert led.leader.endswith(":first") and led.lease_holder == led.leader
            assert "first" in overview(redis_client).live["watcher"]
            watcher.close(release=False)        # as a SIGKILL leaves it: the lease is kept, nothing renews
            silent = wait_for(lambda: (scope := scope_figures(redis_client, "default")) and not scope.leader and scope,
                              timeout=30, message="the scope shown leaderless")
        # Leaderless while the dead leader's lease still runs (a standby would wait for it to end).
        assert silent.lease_holder == led.leader and silent.lease_ttl and silent.lease_ttl > 30
        export(overview(redis_client), counters.totals(redis_client))
        assert metrics.WATCHER_SCOPE_LEASED.labels("default")._value.get() == 0


def test_intake_is_seen_by_its_own_liveness_record(redis_client, redis_url, kubesim, tmp_path):
    with environment(redis_client, redis_url, kubesim, tmp_path) as env:
        chores = Housekeeping(client=redis_client, settings=env.settings, instance="intake-a")
        assert overview(redis_client).live["intake"] == ()
        chores.step()
        assert overview(redis_client).live["intake"] == ("intake-a",)
        export(overview(redis_client), counters.totals(redis_client))
        assert metrics.LIVE_PROCESSES.labels("intake")._value.get() == 1
        chores.gauges.leave()
        assert overview(redis_client).live["intake"] == ()
