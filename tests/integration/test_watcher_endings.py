"""Scenario (e) and the reconciler: jobs that end without a pod finishing them."""
from __future__ import annotations

import base64
import json

import msgpack
import pytest

from podq.broker.queue.envelopes import CONTROL_TASK
from podq.broker.store import keys
from podq.broker.store.ledger import Ledger
from podq.broker.store.watchstate import WatchStore
from podq.shared import naming
from podq.shared.records import ControlRecord, KubernetesJob
from podq.shared.states import ControlOp, State
from tests.support import wait_for
from tests.support import watcher as h


@pytest.fixture
def env(redis_client, redis_url, kubesim, tmp_path):
    with h.environment(redis_client, redis_url, kubesim, tmp_path) as environment:
        yield environment


def queued_controls(client) -> list[ControlRecord]:
    """The control records waiting in the Celery queue, decoded from their envelopes."""
    records = []
    for raw in client.lrange(keys.CELERY_QUEUE, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == CONTROL_TASK:
            args, _kwargs, _embed = msgpack.unpackb(base64.b64decode(message["body"]), raw=False)
            records.extend(ControlRecord.decode(payload) for payload in args[0])
    return records


def name_of(item: KubernetesJob) -> str:
    return naming.pod_name_for(item.job_id, item.key)


def test_pending_deleted_revoked_and_stuck_past_the_deadline(env):
    unschedulable = {"outcome": "Unschedulable"}
    deleted, revoked, revoked_pending, stuck, backoff, fine = (h.job(i) for i in range(6))
    # No fatal reasons here, so the image pull back-off runs into the deadline too; no relaunch of the
    # Pending pod deleted (tests/integration/test_relaunch.py has it).
    with env.watcher(pending_deadline=2.0, fatal_reasons=(), launch_retries=0) as watcher:
        h.launch(env.client, env.api, [(deleted, unschedulable), (revoked, {"run-seconds": "30"}),
                                       (revoked_pending, unschedulable), (stuck, unschedulable),
                                       (backoff, {"outcome": "ImagePullBackOff"}), (fine, None)])
        wait_for(lambda: State.RUNNING in [r.state for r in h.results(env.client).get(revoked.job_id, [])],
                 timeout=10)
        # A Pending pod deleted: lost.
        env.api.delete_namespaced_pod(name_of(deleted), "default", _preload_content=False)
        # Revoked the way the workers' revoke step does it: ledger first, then label, then delete.
        ledger = Ledger(env.client)
        for item in (revoked, revoked_pending):
            ledger.revoke(item.job_id)
        env.api.patch_namespaced_pod(name_of(revoked), "default",
                                     {"metadata": {"labels": {naming.POD_REVOKED: "True"}}}, _preload_content=False)
        env.api.delete_namespaced_pod(name_of(revoked), "default", _preload_content=False)
        # Deleted without the label, but the ledger says revoked: revoked, not lost.
        env.api.delete_namespaced_pod(name_of(revoked_pending), "default", _preload_content=False)
        per_job = env.wait_terminal([deleted, revoked, revoked_pending, stuck, backoff, fine], timeout=15)
        # The deadline's pod is labelled revoked (so it can never count again) and its delete is requested.
        labels = lambda item: env.api.read_namespaced_pod(name_of(item), "default").metadata.labels  # noqa: E731
        wait_for(lambda: labels(stuck).get(naming.POD_REVOKED) == "True"
                 and labels(backoff).get(naming.POD_REVOKED) == "True", timeout=5)
        assert watcher.failed is None
    h.assert_clean(per_job, {deleted.job_id: State.LOST, revoked.job_id: State.REVOKED,
                             revoked_pending.job_id: State.REVOKED, stuck.job_id: State.FAILED,
                             backoff.job_id: State.FAILED, fine.job_id: State.SUCCEEDED})
    stuck_result = per_job[stuck.job_id][-1]
    assert stuck_result.failure_details.reason == "PendingDeadlineExceeded"
    assert "Unschedulable" in stuck_result.failure_details.message
    assert "ImagePull" in per_job[backoff.job_id][-1].failure_details.message
    assert Ledger(env.client).get(stuck.job_id).state.value == "terminal"
    assert Ledger(env.client).get(revoked.job_id).state.value == "revoked"
    queued = b"".join(env.client.lrange(keys.CELERY_QUEUE, 0, -1))
    assert b"podq.control" in queued


def test_reconciler_ends_jobs_without_pods(env):
    ledger = Ledger(env.client)
    never, vanished, running = h.job(1), h.job(2), h.job(3)
    ledger.accept_many([(never, name_of(never))])
    ledger.mark_dispatched([never.job_id])
    # A created job whose pod is gone, and that the watcher never saw.
    ledger.accept_many([(vanished, name_of(vanished))])
    ledger.mark_created(vanished.job_id, uid="gone-uid")
    with env.watcher(lost_after=1.0, created_grace=1.0) as watcher:
        h.launch(env.client, env.api, [(running, {"run-seconds": "30"})])
        per_job = env.wait_terminal([never, vanished], timeout=15)
        assert h.terminal_of(h.results(env.client), running.job_id) is None
        assert watcher.failed is None
    h.assert_clean(per_job, {never.job_id: State.LOST, vanished.job_id: State.LOST})
    assert per_job[never.job_id][-1].failure_details.reason == "PodMissing"


def test_reconciler_leaves_young_jobs_alone(env):
    ledger = Ledger(env.client)
    young, gone = h.job(1), h.job(2)
    ledger.accept_many([(young, name_of(young)), (gone, name_of(gone))])
    # The control: a created job whose pod is gone ends after created_grace, so a pass that
    # ended it has also looked at the young job (the same pass, or a later one).
    ledger.mark_created(gone.job_id, uid="gone-uid")
    with env.watcher(lost_after=60.0, created_grace=1.0) as watcher:
        env.wait_terminal([gone], timeout=15)
        assert watcher.failed is None
    per_job = h.results(env.client)
    assert list(per_job) == [gone.job_id]
    assert per_job[gone.job_id][-1].state is State.LOST
    assert ledger.get(young.job_id).state.value == "accepted"


def test_jobs_in_a_namespace_no_watcher_leads_end_with_a_clear_reason(env):
    # The watcher leads "default" only; podq has a running pod and a job not yet created.
    watched, running, waiting = h.job(1), h.job(2, namespace="podq"), h.job(3, namespace="podq")
    ledger = Ledger(env.client)
    ledger.accept_many([(waiting, name_of(waiting))])
    with env.watcher(lost_after=1.0, created_grace=60.0) as watcher:
        h.launch(env.client, env.api, [(watched, {"run-seconds": "30"}), (running, {"run-seconds": "30"})])
        per_job = env.wait_terminal([running, waiting], timeout=20)
        assert h.terminal_of(h.results(env.client), watched.job_id) is None
        assert watcher.failed is None
    for item in (running, waiting):
        result = per_job[item.job_id][-1]
        assert result.state is State.LOST
        assert result.failure_details.reason == "NamespaceNotWatched"
        assert "'podq'" in result.failure_details.message
    # The running pod would go on unobserved: the workers are asked to delete it.
    deletes = [record.job_id for record in queued_controls(env.client) if record.op is ControlOp.DELETE]
    assert running.job_id in deletes


def test_a_namespace_led_by_another_replica_is_left_to_it(env):
    # A lease on podq held elsewhere: this replica (leading "default") must not end podq's jobs.
    other = h.job(1, namespace="podq")
    ledger = Ledger(env.client)
    ledger.accept_many([(other, name_of(other))])
    ledger.mark_created(other.job_id, uid="u-other")
    gone = h.job(2)
    ledger.accept_many([(gone, name_of(gone))])
    ledger.mark_created(gone.job_id, uid="gone-uid")
    store = WatchStore(env.client)
    assert store.hold("podq", holder="elsewhere", token=None, ttl=60)[0]
    with env.watcher(lost_after=1.0, created_grace=2.0) as watcher:
        env.wait_terminal([gone], timeout=15)   # the control: passes ran past both graces
        assert watcher.failed is None
    assert h.terminal_of(h.results(env.client), other.job_id) is None


def mark_done(env, item: KubernetesJob) -> None:
    """What the workers' mark_done control operation does to a pod."""
    env.api.patch_namespaced_pod(name_of(item), item.namespace,
                                 {"metadata": {"labels": {naming.EXECUTOR_DONE: "True"}}}, _preload_content=False)


def phase_of(env, item: KubernetesJob) -> str:
    return env.api.read_namespaced_pod(name_of(item), item.namespace).status.phase


def test_a_pod_marked_done_while_watched_ends_its_job(env):
    running = h.job(1)
    with env.watcher() as watcher:
        h.launch(env.client, env.api, [(running, {"run-seconds": "30"})])
        wait_for(lambda: State.RUNNING in [r.state for r in h.results(env.client).get(running.job_id, [])],
                 timeout=10, message="the running result")
        mark_done(env, running)
        per_job = env.wait_terminal([running], timeout=15)
        assert watcher.failed is None
    assert [r.state for r in per_job[running.job_id]] == [State.PENDING, State.RUNNING, State.LOST]
    details = per_job[running.job_id][-1].failure_details
    assert details.reason == "LeftTheWatch" and "while Running" in details.message


def test_a_pod_marked_done_while_no_watcher_ran_ends_its_job_at_the_relist(env):
    running = h.job(1)
    with env.watcher():
        h.launch(env.client, env.api, [(running, {"run-seconds": "30"})])
        wait_for(lambda: State.RUNNING in [r.state for r in h.results(env.client).get(running.job_id, [])],
                 timeout=10, message="the running result")
    mark_done(env, running)
    env.client.delete(keys.watcher_key("default", "rv"))  # the next leader lists instead of resuming the watch
    with env.watcher() as watcher:
        per_job = env.wait_terminal([running], timeout=15)
        assert watcher.failed is None
    assert [r.state for r in per_job[running.job_id]] == [State.PENDING, State.RUNNING, State.LOST]
    details = per_job[running.job_id][-1].failure_details
    assert details.reason == "LeftTheWatch" and f"was labelled {naming.EXECUTOR_DONE}=True" in details.message


def test_a_pod_marked_done_before_the_watcher_ever_saw_it_ends_its_job(env):
    # Never in the watcher's selector: the reconciler reads it and its status ends the job.
    failed, succeeded = h.job(1), h.job(2)
    h.launch(env.client, env.api, [(failed, {"run-seconds": "0.1", "outcome": "Failed"}),
                                   (succeeded, {"run-seconds": "0.1"})])
    for item in (failed, succeeded):
        mark_done(env, item)
    wait_for(lambda: [phase_of(env, item) for item in (failed, succeeded)] == ["Failed", "Succeeded"],
             timeout=10, message="both pods finished")
    with env.watcher(created_grace=1.0) as watcher:
        per_job = env.wait_terminal([failed, succeeded], timeout=15)
        assert watcher.failed is None
    assert [r.state for r in per_job[failed.job_id]] == [State.FAILED]
    assert [r.state for r in per_job[succeeded.job_id]] == [State.SUCCEEDED]
