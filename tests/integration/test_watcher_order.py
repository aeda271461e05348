"""Every pod event yields its result, whatever the order in which the watch and the worker's
``created`` ledger step reach Redis, and whenever the watcher starts watching (issue 20)."""
from __future__ import annotations

import orjson
import pytest

from podq.broker.store.ledger import Ledger
from podq.shared import naming
from podq.shared.states import LedgerState, State
from tests.support import wait_for
from tests.support import watcher as h


@pytest.fixture
def env(redis_client, redis_url, kubesim, tmp_path):
    with h.environment(redis_client, redis_url, kubesim, tmp_path) as environment:
        yield environment


def create(env, item) -> tuple[str, str, str]:
    """Create ``item``'s pod as a worker does, without the ledger's created step: (name, uid, rv)."""
    body = h.pod_body(item)
    meta = orjson.loads(env.api.create_namespaced_pod(item.namespace, body, _preload_content=False).data)["metadata"]
    return body["metadata"]["name"], meta["uid"], meta["resourceVersion"]


def pending_then_deleted(env, item, name: str) -> None:
    """The parity run's sequence: Pending (ContainerCreating, then ImagePullBackOff), then deleted
    with the default grace period, all right after the creation."""
    admin = env.sim.admin()
    admin.set_pod_status(item.namespace, name, status=h.SAMPLES_STATUS["container_creating"])
    admin.set_pod_status(item.namespace, name, status=h.SAMPLES_STATUS["image_pull_backoff"])
    env.api.delete_namespaced_pod(name, item.namespace, _preload_content=False)


def watched_everything(env, watcher) -> bool:
    current = str(env.sim.admin().resource_version())
    return any(runner.rv == current for runner in watcher.led())


@pytest.mark.parametrize("order", ["watch_first", "created_first"])
def test_a_pod_deleted_while_pending_right_after_creation_ends_in_either_order(env, order):
    env.sim.admin().pause_kubelet()
    items = [h.job(i, run=order) for i in range(3)]
    ledger = Ledger(env.client)
    # A created job whose pod is gone would also end by the reconciler: keep it out of the way. No
    # relaunch here (launch_retries=0): the sequence without it; test_relaunch.py and the test below have it.
    with env.watcher(created_grace=600.0, launch_retries=0) as watcher:
        wait_for(lambda: watcher.leads("default"), timeout=15, message="the watcher leading")
        ledger.accept_many([(item, naming.pod_name_for(item.job_id, item.key)) for item in items])
        ledger.mark_dispatched([item.job_id for item in items])
        created = {}
        for item in items:
            name, uid, rv = create(env, item)
            created[item.job_id] = (uid, rv)
            if order == "created_first":
                assert ledger.mark_created(item.job_id, uid=uid) == (True, LedgerState.CREATED.value)
            pending_then_deleted(env, item, name)
        last_rv = str(env.sim.admin().resource_version())
        wait_for(lambda: watched_everything(env, watcher), timeout=15, message="the watcher at the last event")
        # Every event is processed: the results are out, before (watch_first) or after the created step.
        per_job = env.wait_terminal(items, timeout=15)
        if order == "watch_first":
            for item in items:
                moved, state = ledger.mark_created(item.job_id, uid=created[item.job_id][0])
                assert (moved, state) == (False, LedgerState.TERMINAL.value)
                # The pod that ended the job is recorded as its pod: the worker keeps it (settle).
                assert ledger.get(item.job_id).uid == created[item.job_id][0]
    h.assert_clean(per_job, {item.job_id: State.LOST for item in items})
    for item in items:
        results = per_job[item.job_id]
        assert [r.state for r in results] == [State.PENDING, State.LOST]
        # Each result carries the resourceVersion of the event that produced it: ADDED, then DELETED.
        assert results[0].resource_version == created[item.job_id][1]
        assert results[1].failure_details.reason == "PodDeleted"
        assert int(results[1].resource_version) > int(results[0].resource_version)
        assert ledger.get(item.job_id).terminal_state == State.LOST.value
    assert per_job[items[-1].job_id][1].resource_version == last_rv


def test_pods_created_before_the_watcher_first_lists_get_their_results_at_once(env):
    """Pods created (and one deleted while Pending) before any watcher watched: the first list
    publishes what each one's state says, and the deleted one ends at once, not after the
    reconciler's grace."""
    env.sim.admin().pause_kubelet()
    gone, waiting, running = h.job(1), h.job(2), h.job(3)
    ledger = Ledger(env.client)
    ledger.accept_many([(item, naming.pod_name_for(item.job_id, item.key)) for item in (gone, waiting, running)])
    ledger.mark_dispatched([item.job_id for item in (gone, waiting, running)])
    rvs = {}
    for item in (gone, waiting, running):
        name, uid, rvs[item.job_id] = create(env, item)
        ledger.mark_created(item.job_id, uid=uid)
    pending_then_deleted(env, gone, naming.pod_name_for(gone.job_id, gone.key))
    running_rv = env.sim.admin().set_pod_status(
        "default", naming.pod_name_for(running.job_id, running.key),
        status=h.SAMPLES_STATUS["running"])["metadata"]["resourceVersion"]
    with env.watcher(created_grace=600.0, reconcile_interval=600.0):
        per_job = env.wait_terminal([gone], timeout=15)
        wait_for(lambda: State.RUNNING in [r.state for r in h.results(env.client).get(running.job_id, [])]
                 and h.results(env.client).get(waiting.job_id), timeout=15, message="the listed pods' results")
        per_job = h.results(env.client)
    assert [r.state for r in per_job[gone.job_id]] == [State.LOST]
    assert per_job[gone.job_id][0].failure_details.reason == "PodVanished"
    assert [(r.state, r.resource_version) for r in per_job[waiting.job_id]] == [(State.PENDING, rvs[waiting.job_id])]
    # First seen Running by the list: its pending comes first, both from the state the list showed.
    assert [(r.state, r.resource_version) for r in per_job[running.job_id]] == [
        (State.PENDING, running_rv), (State.RUNNING, running_rv)]


@pytest.mark.parametrize("order", ["watch_first", "created_first"])
def test_a_pod_deleted_while_pending_is_launched_again_in_either_order(env, order):
    """With launch retries on (the default), the same sequence relaunches the job whichever of the watch
    and the created step reaches Redis first: a failure seen before the create is recorded waits for it."""
    env.sim.admin().pause_kubelet()
    item = h.job(1, run=f"again-{order}")
    ledger = Ledger(env.client)
    with env.watcher(created_grace=600.0) as watcher:
        wait_for(lambda: watcher.leads("default"), timeout=15, message="the watcher leading")
        ledger.accept_many([(item, naming.pod_name_for(item.job_id, item.key))])
        ledger.mark_dispatched([item.job_id])
        name, uid, _ = create(env, item)
        if order == "created_first":
            ledger.mark_created(item.job_id, uid=uid)
        pending_then_deleted(env, item, name)
        wait_for(lambda: watched_everything(env, watcher), timeout=15, message="the watcher at the last event")
        if order == "watch_first":
            assert ledger.mark_created(item.job_id, uid=uid) == (True, LedgerState.CREATED.value)
        wait_for(lambda: len(h.results(env.client).get(item.job_id, [])) == 2, timeout=15,
                 message="the relaunch's pending")
    results = h.results(env.client)[item.job_id]
    assert [r.state for r in results] == [State.PENDING, State.PENDING]
    assert results[1].pending_reason.reason == "Relaunched"
    entry = ledger.get(item.job_id)
    assert (entry.state, entry.launch, entry.pod_name) == (
        LedgerState.DISPATCHED, 2, naming.pod_name_for(item.job_id, item.key, launch=2))
