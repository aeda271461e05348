"""Launch failures retried without costing a try (issue 20): a pod that ends before its main container
started is created again under the job's next launch name, once per failed pod, the count in the ledger."""
from __future__ import annotations

import pytest

from podq.broker.store import keys
from podq.broker.store.ledger import Ledger
from podq.shared import naming
from podq.shared.states import State
from tests.support import wait_for
from tests.support.pods import EVICTED_BEFORE_START
from tests.support import watcher as h
from tests.support.workers import NAMESPACE, admit, make_job, make_settings, releasing, results_for

NODE_LOST = {  # the taint manager's mark before the pod is deleted (its node stopped answering)
    "phase": "Pending", "qosClass": "BestEffort",
    "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                    "message": "Taint manager: deleting due to NoExecute taint"},
                   {"type": "PodScheduled", "status": "True"}],
    "containerStatuses": [{"name": "base", "ready": False, "restartCount": 0, "image": "apache/airflow:3.1.0",
                           "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}],
}


@pytest.fixture
def env(redis_client, redis_url, kubesim, tmp_path):
    with h.environment(redis_client, redis_url, kubesim, tmp_path) as environment:
        yield environment


@pytest.fixture
def settings(redis_url, kubesim):
    return make_settings(redis_url, kubesim.kubeconfig)


def name_of(job, launch: int = 1) -> str:
    return naming.pod_name_for(job.job_id, job.key, launch=launch)


def exists(env, name: str) -> bool:
    return any(pod.metadata.name == name for pod in env.api.list_namespaced_pod(NAMESPACE).items)


def evict(env, job, launch: int = 1) -> None:
    wait_for(lambda: exists(env, name_of(job, launch)), timeout=15, message=f"launch {launch}'s pod")
    env.sim.admin().set_pod_status(NAMESPACE, name_of(job, launch), status=EVICTED_BEFORE_START)


def lose_node(env, job) -> None:
    wait_for(lambda: exists(env, name_of(job)), timeout=15, message="the first pod")
    env.sim.admin().set_pod_status(NAMESPACE, name_of(job), status=NODE_LOST)
    env.api.delete_namespaced_pod(name_of(job), NAMESPACE, grace_period_seconds=0)


def watching_paused(env, watcher) -> None:
    """The watcher watching (later pod changes come as watch events), then the kubelet paused."""
    wait_for(lambda: watcher.led() and all(r.synced.is_set() for r in watcher.led()), timeout=15,
             message="the watcher watching")
    env.sim.admin().pause_kubelet()


def relaunches(env, job) -> list:
    return [r for r in results_for(env.client, job)
            if r.pending_reason is not None and r.pending_reason.reason == "Relaunched"]


def ended(env, job):
    return wait_for(lambda: [r for r in results_for(env.client, job) if r.state.terminal], timeout=30,
                    message="the job's terminal result")[0]


@pytest.mark.parametrize("how", ["evicted", "node lost"])
def test_a_pod_that_fails_before_it_starts_is_launched_again_and_the_job_succeeds(env, settings, podq_worker, how):
    job = make_job(1)
    admin = env.sim.admin()
    with env.watcher(namespaces=(NAMESPACE,)) as watcher, podq_worker(settings):
        watching_paused(env, watcher)
        admit(env.client, [job])
        (evict if how == "evicted" else lose_node)(env, job)
        wait_for(lambda: relaunches(env, job), timeout=15, message="the Relaunched pending")
        admin.resume_kubelet()
        end = ended(env, job)
    assert end.state is State.SUCCEEDED and end.pod_name == name_of(job, 2)
    (again,) = relaunches(env, job)
    assert again.event_id == f"{job.job_id}:pending:launch-2"
    assert name_of(job) in again.pending_reason.message and name_of(job, 2) in again.pending_reason.message
    assert "(launch 2 of 2)" in again.pending_reason.message
    assert [r.state for r in results_for(env.client, job) if r.state.terminal] == [State.SUCCEEDED]
    assert [admin.create_count(namespace=NAMESPACE, name_prefix=name_of(job, n)) for n in (1, 2)] == [1, 1]
    assert Ledger(env.client).get(job.job_id).launch == 2
    if how == "evicted":  # the failed first pod is kept, out of the watch
        labels = env.api.read_namespaced_pod(name_of(job), NAMESPACE).metadata.labels
        assert labels[naming.EXECUTOR_DONE] == "True"


def test_a_relaunched_jobs_create_results_name_its_second_pod(env, settings, podq_worker):
    """The worker's own results for a relaunch's create (a quota's FailedCreate pending, then a final
    refusal's failed) name the pod it tried to create, launch 2's, not the evicted first one."""
    job = make_job(5)
    admin = env.sim.admin()
    quota = admin.add_fault(action="quota", verb="create", name_prefix=name_of(job, 2))
    with env.watcher(namespaces=(NAMESPACE,)) as watcher, podq_worker(settings), releasing(env.client):
        watching_paused(env, watcher)
        admit(env.client, [job])
        evict(env, job)
        waiting = wait_for(lambda: [r for r in results_for(env.client, job) if r.pending_reason is not None
                                    and r.pending_reason.reason == "FailedCreate"], timeout=30,
                           message="the second create's FailedCreate pending")[0]
        admin.add_fault(action="403", verb="create", name_prefix=name_of(job, 2))
        admin.remove_fault(quota)
        end = ended(env, job)
        admin.resume_kubelet()
    assert waiting.pod_name == name_of(job, 2) and "exceeded quota" in waiting.pending_reason.message
    assert end.state is State.FAILED and end.pod_name == name_of(job, 2)
    assert "(HTTP 403)" in end.failure_details.message
    assert admin.create_count(namespace=NAMESPACE, name_prefix=name_of(job, 2)) == 0


def test_a_job_whose_pods_keep_failing_before_they_start_fails_after_its_launches(env, settings, podq_worker):
    job = make_job(2)
    admin = env.sim.admin()
    with env.watcher(namespaces=(NAMESPACE,)) as watcher, podq_worker(settings):
        watching_paused(env, watcher)
        admit(env.client, [job])
        evict(env, job, 1)
        evict(env, job, 2)
        end = ended(env, job)
    assert end.state is State.FAILED and end.pod_name == name_of(job, 2)
    assert end.failure_details.pod_reason == "Evicted"
    assert len(relaunches(env, job)) == 1
    assert admin.create_count(namespace=NAMESPACE, name_prefix=name_of(job, 3)) == 0


def test_a_replayed_failure_after_a_crash_relaunches_nothing_twice(env, settings, podq_worker):
    """The watcher dies after the ledger's relaunch but before its batch landed: the restarted one reads
    the same failure again from its old position, and the job still gets exactly one second pod."""
    job = make_job(3)
    admin = env.sim.admin()
    with podq_worker(settings):
        with env.watcher(namespaces=(NAMESPACE,)) as watcher:
            watching_paused(env, watcher)
            admit(env.client, [job])
            wait_for(lambda: exists(env, name_of(job)) and Ledger(env.client).get(job.job_id).state.value == "created",
                     timeout=15, message="the first pod created")
            wait_for(lambda: results_for(env.client, job), timeout=15, message="its first pending")
            before = (env.client.get(keys.watcher_key(NAMESPACE, "rv")),
                      env.client.hgetall(keys.watcher_key(NAMESPACE, "states")))
            evict(env, job)
            wait_for(lambda: relaunches(env, job), timeout=15, message="the Relaunched pending")
        # As if that batch had never landed: the position and pod states from before the eviction.
        env.client.set(keys.watcher_key(NAMESPACE, "rv"), before[0])
        env.client.delete(keys.watcher_key(NAMESPACE, "states"))
        env.client.hset(keys.watcher_key(NAMESPACE, "states"), mapping=before[1])
        admin.resume_kubelet()
        with env.watcher(namespaces=(NAMESPACE,)):
            end = ended(env, job)
    assert end.state is State.SUCCEEDED
    assert len(relaunches(env, job)) == 1
    assert [admin.create_count(namespace=NAMESPACE, name_prefix=name_of(job, n)) for n in (1, 2, 3)] == [1, 1, 0]


def test_launch_retries_off_fails_the_job_as_before(env, settings, podq_worker):
    job = make_job(4)
    admin = env.sim.admin()
    with env.watcher(namespaces=(NAMESPACE,), launch_retries=0) as watcher, podq_worker(settings):
        watching_paused(env, watcher)
        admit(env.client, [job])
        evict(env, job)
        end = ended(env, job)
    assert end.state is State.FAILED and not relaunches(env, job)
