"""The watcher against kubesim (over HTTP, official client) and the session Valkey server."""
from __future__ import annotations

import base64
import json
import time

import msgpack
import pytest

from podq.broker.errors import FencedError
from podq.broker.store import keys
from podq.broker.store.publish import Item, PodState, Publisher
from podq.broker.store.watchstate import WatchStore
from podq.shared import naming
from podq.shared.records import ControlRecord
from podq.shared.states import ControlOp, State
from podq.watcher.main import main as watcher_main
from tests.support import wait_for
from tests.support import watcher as h


@pytest.fixture
def env(redis_client, redis_url, kubesim, tmp_path):
    with h.environment(redis_client, redis_url, kubesim, tmp_path) as environment:
        yield environment


def test_outcomes_are_published_once_each_in_order(env):
    outcomes = {0: None, 1: {"outcome": "Failed", "exit-code": "3"}, 2: {"outcome": "OOMKilled"},
                3: {"outcome": "InvalidImageName"}, 4: {"outcome": "CreateContainerConfigError"},
                5: {"outcome": "Evicted"}, 6: {"outcome": "PullQPSExceeded"}, 7: {"run-seconds": "0.5"},
                8: {"outcome": "ErrImagePull"}}
    expected = {0: State.SUCCEEDED, 1: State.FAILED, 2: State.FAILED, 3: State.FAILED, 4: State.FAILED,
                5: State.FAILED, 6: State.SUCCEEDED, 7: State.SUCCEEDED, 8: State.FAILED}
    jobs = {index: h.job(index) for index in outcomes}
    # Fatal waiting reasons end the pod before it started: no relaunch here (test_relaunch.py has it).
    with env.watcher(launch_retries=0) as watcher:
        h.launch(env.client, env.api, [(jobs[i], outcomes[i]) for i in outcomes])
        per_job = env.wait_terminal(jobs.values())
        assert watcher.leads("default")
    h.assert_clean(per_job, {jobs[i].job_id: expected[i] for i in outcomes})
    assert [r.state for r in per_job[jobs[7].job_id]] == [State.PENDING, State.RUNNING, State.SUCCEEDED]
    failed = per_job[jobs[1].job_id][-1]
    assert failed.failure_details.exit_code == 3 and failed.source.value == "watcher"
    assert failed.annotations[naming.JOB_ID_KEY] == jobs[1].job_id
    assert per_job[jobs[3].job_id][-1].failure_details.container_reason == "InvalidImageName"
    # Every terminal pod is left for the completion policy: one `complete` record per job
    # (several travel in one Celery message).
    records = [ControlRecord.decode(payload) for raw in env.client.lrange(keys.CELERY_QUEUE, 0, -1)
               for payload in msgpack.unpackb(base64.b64decode(json.loads(raw)["body"]), raw=False)[0][0]]
    assert sorted(record.job_id for record in records) == sorted(job.job_id for job in jobs.values())
    assert {record.op for record in records} == {ControlOp.COMPLETE}


def test_results_are_routed_by_the_scheduler_id_annotation(env):
    first, second = h.job(1, scheduler_id="sched a/1"), h.job(2, scheduler_id="sched-b")
    with env.watcher():
        h.launch(env.client, env.api, [(first, None), (second, None)])
        wait_for(lambda: h.terminal_of(h.results(env.client, "sched a/1"), first.job_id)
                 and h.terminal_of(h.results(env.client, "sched-b"), second.job_id), timeout=15)
    assert set(h.results(env.client, "sched a/1")) == {first.job_id}
    assert set(h.results(env.client, "sched-b")) == {second.job_id}


def test_restart_resumes_from_the_stored_position_without_replaying(env):
    jobs = [h.job(i) for i in range(20)]
    with env.watcher():
        h.launch(env.client, env.api, [(item, None) for item in jobs[:10]])
        env.wait_terminal(jobs[:10])
    position = env.client.get(keys.watcher_key("default", "rv"))
    assert position
    h.launch(env.client, env.api, [(item, {"run-seconds": "0.3"}) for item in jobs[10:]])
    with env.watcher():
        per_job = env.wait_terminal(jobs)
    h.assert_clean(per_job, {item.job_id: State.SUCCEEDED for item in jobs})
    assert env.sim.admin().stats()["requests"].get("list", 0) <= 1  # the restart watched, no relist


def test_compaction_while_down_relists_and_publishes_what_was_missed(env):
    keep, delete = [h.job(i) for i in range(6)], [h.job(i) for i in range(6, 10)]
    with env.watcher():
        h.launch(env.client, env.api, [(item, {"run-seconds": "30"}) for item in keep[:3] + delete])
        wait_for(lambda: all(State.RUNNING in [r.state for r in h.results(env.client).get(item.job_id, [])]
                             for item in keep[:3] + delete), timeout=15)
    # While the watcher is away: pods end, new pods run, some vanish; then history is compacted.
    for item in keep[:3]:
        env.sim.admin().set_pod_status("default", naming.pod_name_for(item.job_id, item.key),
                                       status=h.SAMPLES_STATUS["failed_error"])
    h.launch(env.client, env.api, [(item, None) for item in keep[3:]])
    for item in delete:
        env.api.delete_namespaced_pod(naming.pod_name_for(item.job_id, item.key), "default",
                                      grace_period_seconds=0, _preload_content=False)
    wait_for(lambda: env.sim.admin().stats()["pods"] == 6, timeout=10)
    env.sim.admin().compact()
    with env.watcher():
        per_job = env.wait_terminal(keep + delete)
    expected = {item.job_id: State.FAILED for item in keep[:3]}
    expected.update({item.job_id: State.SUCCEEDED for item in keep[3:]})
    expected.update({item.job_id: State.LOST for item in delete})
    h.assert_clean(per_job, expected)
    assert env.client.hlen(keys.watcher_key("default", "states")) == 6


def test_compaction_and_dropped_watches_during_the_run(env):
    jobs = [h.job(i) for i in range(60)]
    outcomes = [{"run-seconds": f"{0.2 + (i % 7) * 0.3:.1f}", **({"outcome": "Failed"} if i % 5 == 0 else {})}
                for i in range(len(jobs))]
    admin = env.sim.admin()
    with env.watcher():
        h.launch(env.client, env.api, list(zip(jobs[:30], outcomes[:30])))
        for round_ in range(6):
            if round_ == 2:
                h.launch(env.client, env.api, list(zip(jobs[30:], outcomes[30:])))
            admin.compact() if round_ % 2 else None
            admin.close_watches(abrupt=bool(round_ % 3 == 0))
            time.sleep(0.4)  # let the watcher reconnect between drops: the fault cadence, not a wait
        per_job = env.wait_terminal(jobs, timeout=30)
    h.assert_clean(per_job, {item.job_id: State.FAILED if i % 5 == 0 else State.SUCCEEDED
                             for i, item in enumerate(jobs)})


def test_direct_http_410_on_watch_relists(env):
    jobs = [h.job(i) for i in range(4)]
    with env.watcher():
        h.launch(env.client, env.api, [(item, None) for item in jobs[:2]])
        env.wait_terminal(jobs[:2])
    admin = env.sim.admin()
    admin.watch_gone(True)
    h.launch(env.client, env.api, [(item, None) for item in jobs[2:]])
    with env.watcher():
        wait_for(lambda: admin.stats()["requests"].get("list", 0) >= 1, timeout=10)
        admin.watch_gone(False)
        per_job = env.wait_terminal(jobs)
    h.assert_clean(per_job, {item.job_id: State.SUCCEEDED for item in jobs})


def test_fencing_refuses_a_deposed_leaders_batch(env):
    store = WatchStore(env.client)
    held, old = store.hold("fence-test", holder="a", token=None, ttl=0.2)
    assert held
    wait_for(lambda: store.hold("fence-test", holder="b", token=None, ttl=10)[0], timeout=5)
    with pytest.raises(FencedError):
        Publisher(env.client).publish_items([Item(pod_state=PodState(field="x", value=b"1"))],
                                            checkpoint=store.checkpoint("fence-test", token=old, position="5"))
    assert env.client.get(keys.watcher_key("fence-test", "rv")) is None
    assert not store.hold("fence-test", holder="a", token=old, ttl=10)[0]


def test_check_reports_the_health_of_a_running_watcher(env, capsys):
    health = str(env.tmp / "health.json")
    assert watcher_main(["--namespace", "default", "--check", "--health-file", health], env.settings) == 1
    with env.watcher(health_file=health) as watcher:
        wait_for(lambda: watcher.leads("default") and watcher.runners["default"].synced.is_set(), timeout=10)
        wait_for(lambda: watcher_main(["-n", "default", "--check", "--health-file", health], env.settings) == 0,
                 timeout=10)
    assert watcher_main(["--namespace", "default", "--check", "--health-file", health], env.settings) == 1
    assert "healthy" in capsys.readouterr().out


def test_watcher_without_lease_does_not_publish(env):
    jobs = [h.job(i) for i in range(3)]
    store = WatchStore(env.client)
    assert store.hold("default", holder="someone-else", token=None, ttl=30)[0]
    with env.watcher() as watcher:
        tries = []
        hold = watcher.broker.store.hold
        watcher.broker.store.hold = lambda *args, **kwargs: tries.append(1) or hold(*args, **kwargs)
        h.launch(env.client, env.api, [(item, None) for item in jobs])
        finished = lambda: [pod.status.phase for pod in env.api.list_namespaced_pod("default").items]  # noqa: E731
        wait_for(lambda: finished() == ["Succeeded"] * 3, timeout=10, message="the three pods to finish")
        # Every pod has finished; the standby now sees its lease refused three more times.
        seen = len(tries)
        wait_for(lambda: len(tries) >= seen + 3, timeout=10, message="three more lease attempts")
        assert not watcher.leads()
        assert h.results(env.client) == {}


def test_standby_takes_over_when_the_leader_dies(env):
    before, after = [h.job(i) for i in range(5)], [h.job(i) for i in range(5, 10)]
    replicas = [h.Watcher(env.settings, namespaces=["default"], instance=name,
                          health_file=str(env.tmp / f"{name}.json")).start() for name in ("one", "two")]
    try:
        wait_for(lambda: any(replica.leads("default") for replica in replicas), timeout=5)
        leader, standby = replicas if replicas[0].leads("default") else replicas[::-1]
        h.launch(env.client, env.api, [(item, None) for item in before])
        env.wait_terminal(before)
        assert not standby.leads()
        leader.close(release=False)  # dies holding its lease, as a SIGKILLed process would
        died = time.monotonic()
        h.launch(env.client, env.api, [(item, None) for item in after])
        per_job = env.wait_terminal(after, timeout=15)
        took = time.monotonic() - died
        assert standby.leads("default")
    finally:
        for replica in replicas:
            if not replica.stopping.is_set():
                replica.close()
    assert took <= env.settings.watcher.lease_ttl + 2.0, took
    h.assert_clean(per_job, {item.job_id: State.SUCCEEDED for item in before + after})
