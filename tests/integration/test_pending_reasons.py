"""Live pending reasons through the publish script and the watcher on kubesim (issue 20)."""
from __future__ import annotations

import pytest

from podq.broker.store import keys, streams
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import Publisher
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, KubernetesWatch, PendingReason, TaskKey
from podq.shared.states import MAX_PENDING_RESULTS, Source, State
from tests.support import wait_for
from tests.support import watcher as h


def pending(job: KubernetesJob, reason: str | None, *, again: str | None = None, message: str | None = None):
    return KubernetesWatch.build(job_id=job.job_id, scheduler_id=job.scheduler_id, key=job.key,
                                 source=Source.WATCHER, state=State.PENDING, again=again,
                                 pending_reason=PendingReason(reason=reason, message=message) if reason else None)


def stream(client, scheduler_id: str) -> list[KubernetesWatch]:
    return [KubernetesWatch.decode(streams.record_of(fields))
            for _id, fields in client.xrange(keys.results_stream(scheduler_id))]


@pytest.fixture
def job(redis_client) -> KubernetesJob:
    item = KubernetesJob.new(scheduler_id="s", key=TaskKey(dag_id="d", task_id="t", run_id="r"))
    Ledger(redis_client).accept_many([(item, pod_name_for(item.job_id, item.key))])
    return item


def test_a_changed_reason_is_published_again_the_same_one_is_not(redis_client, job):
    publisher = Publisher(redis_client)
    sent = publisher.publish([pending(job, None), pending(job, "Unschedulable", again="5", message="0/3 nodes"),
                              pending(job, "Unschedulable", again="6", message="0/3 nodes"),
                              pending(job, "ContainerCreating", again="7")])
    assert [bool(entry) for entry in sent] == [True, True, False, True]
    got = stream(redis_client, "s")
    assert [(r.event_id.removeprefix(job.job_id), r.pending_reason.reason if r.pending_reason else None)
            for r in got] == [(":pending", None), (":pending:5", "Unschedulable"), (":pending:7", "ContainerCreating")]


def test_a_first_kind_pending_is_published_once_and_nothing_pending_after_running_or_the_end(redis_client, job):
    publisher = Publisher(redis_client)
    # Without `again` a pending is the job's first only (its event id could not tell a second apart).
    assert [bool(e) for e in publisher.publish([pending(job, "A"), pending(job, "B")])] == [True, False]
    running = KubernetesWatch.build(job_id=job.job_id, scheduler_id="s", key=job.key, source=Source.WATCHER,
                                    state=State.RUNNING)
    assert publisher.publish([running, pending(job, "C", again="9")]) != ["", ""]
    assert [r.state for r in stream(redis_client, "s")] == [State.PENDING, State.RUNNING]


def test_pending_results_per_job_are_capped(redis_client, job):
    publisher = Publisher(redis_client)
    publisher.publish([pending(job, "r0")])
    for n in range(1, MAX_PENDING_RESULTS + 10):
        publisher.publish([pending(job, f"r{n % 2}", again=str(n))])  # a flapping pod
    assert len(stream(redis_client, "s")) == MAX_PENDING_RESULTS


@pytest.fixture
def env(redis_client, redis_url, kubesim, tmp_path):
    with h.environment(redis_client, redis_url, kubesim, tmp_path) as environment:
        yield environment


def watching(watcher) -> None:
    """Wait until the watcher has listed and watches: later pod changes then come as watch events."""
    wait_for(lambda: watcher.led() and all(runner.synced.is_set() for runner in watcher.led()), timeout=15,
             message="the watcher watching")


def reasons(env, item) -> list[str | None]:
    return [r.pending_reason.reason if r.pending_reason else None
            for r in h.results(env.client).get(item.job_id, []) if r.state is State.PENDING]


def test_an_unschedulable_pod_tells_the_scheduler_why(env):
    item = h.job(1)
    with env.watcher(pending_reason_interval=0.2, pod_events=False) as watcher:
        watching(watcher)
        h.launch(env.client, env.api, [(item, {"outcome": "Unschedulable"})])
        wait_for(lambda: "Unschedulable" in reasons(env, item), timeout=15, message="the Unschedulable reason")
    result = [r for r in h.results(env.client)[item.job_id] if r.pending_reason][-1]
    assert result.pending_reason.message.startswith("0/3 nodes are available")  # the scheduler's message
    assert result.event_id == f"{item.job_id}:pending:{result.resource_version}"


def test_the_schedulers_event_says_it_too_when_events_are_watched(env):
    item = h.job(1)
    with env.watcher(pending_reason_interval=0.2):
        h.launch(env.client, env.api, [(item, {"outcome": "Unschedulable"})])
        # The status (Unschedulable) and the Event (FailedScheduling) come within one interval: the
        # latest is published when it ends.
        wait_for(lambda: {"Unschedulable", "FailedScheduling"} & set(reasons(env, item)), timeout=15,
                 message="the scheduler's reason")
    result = [r for r in h.results(env.client)[item.job_id] if r.pending_reason][-1]
    assert result.pending_reason.message.startswith("0/3 nodes are available")


def test_a_missing_config_map_is_reported_and_its_events_end_up_in_the_failure(env):
    item = h.job(3)
    with env.watcher(pending_reason_interval=0.2, pending_deadline=3.0):
        h.launch(env.client, env.api, [(item, {"outcome": "FailedMount"})])
        wait_for(lambda: "FailedMount" in reasons(env, item), timeout=15, message="the FailedMount reason")
        per_job = env.wait_terminal([item], timeout=20)
    mount = [r for r in per_job[item.job_id] if r.pending_reason and r.pending_reason.reason == "FailedMount"][0]
    assert mount.pending_reason.message == ('MountVolume.SetUp failed for volume "config" : '
                                            'configmap "missing-config" not found')
    assert mount.event_id.startswith(f"{item.job_id}:pending:event-")
    failed = per_job[item.job_id][-1]
    assert failed.state is State.FAILED and failed.failure_details.reason == "PendingDeadlineExceeded"
    assert any(line.startswith("Warning FailedMount: MountVolume.SetUp failed") for line in failed.failure_details.events)
    h.assert_clean(per_job, {item.job_id: State.FAILED})


def test_a_pod_deleted_before_it_ran_leaves_its_last_events_in_the_lost_result(env):
    item = h.job(4)
    with env.watcher(pending_reason_interval=0.2, fatal_reasons=(), launch_retries=0) as watcher:
        h.launch(env.client, env.api, [(item, {"outcome": "ErrImagePull"})])
        wait_for(lambda: any(r.pending_reason and r.pending_reason.reason in ("Failed", "BackOff", "Pulling")
                             for r in h.results(env.client).get(item.job_id, [])),
                 timeout=15, message="a pending reason from the kubelet's events")
        assert all(runner._notices.received for runner in watcher.led())
        env.api.delete_namespaced_pod(h.naming.pod_name_for(item.job_id, item.key), "default", grace_period_seconds=0)
        per_job = env.wait_terminal([item], timeout=15)
    lost = per_job[item.job_id][-1]
    assert lost.state is State.LOST and lost.failure_details.reason == "PodDeleted"
    assert any(line.startswith("Warning Failed: Error: ErrImagePull") for line in lost.failure_details.events)


def test_an_image_that_cannot_be_pulled_reports_each_stage_then_fails_by_the_deadline(env):
    item = h.job(2)
    # Without fatal reasons the pull errors stay pending reasons until the pending deadline.
    with env.watcher(pending_reason_interval=0.2, fatal_reasons=(), pending_deadline=3.0):
        h.launch(env.client, env.api, [(item, {"outcome": "ErrImagePull"})])
        per_job = env.wait_terminal([item], timeout=20)
    seen = reasons(env, item)
    # From the status (ErrImagePull, ImagePullBackOff) or the kubelet's events (Pulling, Failed, BackOff).
    assert {"ErrImagePull", "ImagePullBackOff", "Pulling", "Failed", "BackOff"} & set(seen), seen
    assert len(seen) <= MAX_PENDING_RESULTS
    assert per_job[item.job_id][-1].state is State.FAILED
    assert per_job[item.job_id][-1].failure_details.reason == "PendingDeadlineExceeded"
    h.assert_clean(per_job, {item.job_id: State.FAILED})


def test_the_airflow_task_log_of_a_queued_task_says_why_its_pod_waits(env):
    """podq.airflow's ``get_task_log`` reader (no Airflow needed for it): for a Pending pod, its status
    and last Events instead of a log that does not exist yet."""
    from podq.airflow.config import ExecutorConfig
    from podq.airflow.kube import PodLogs

    item = h.job(5)
    h.launch(env.client, env.api, [(item, {"outcome": "Unschedulable"})])
    wait_for(lambda: any(e.reason == "FailedScheduling" for e in env.api.list_namespaced_event("default").items),
             timeout=15, message="the scheduler's event")
    reader = PodLogs(ExecutorConfig(redis_url="redis://unused", kube_config_file=env.sim.kubeconfig,
                                    logs_from_kubernetes=True))
    lines, messages = reader.read(item.key, namespace="default")
    assert lines == []
    assert messages[0].endswith("is Pending; the task has not started")
    assert any(m.startswith("podq: not scheduled: Unschedulable: 0/3 nodes are available") for m in messages)
    assert any(m.startswith("podq: event Warning FailedScheduling: 0/3 nodes are available") for m in messages)
