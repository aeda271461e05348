"""Workers against kubesim over HTTP and a real Valkey: exactly one pod per job, and the API error policy."""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time

import pytest

from podq.broker.store import keys
from podq.broker.store.ledger import Lease, Ledger
from podq.broker.store.publish import Item, Publisher
from podq.broker.store.scripts import scripts_for
from podq.shared import metrics, naming
from podq.shared.records import FailureDetails, KubernetesWatch
from podq.shared.states import Source, State
from podq.shared.kubeclient import api_client
from podq.workers.kube import Kube
from podq.workers.podspec import build_pod
from podq.watcher.daemon import Watcher
from podq.workers.templates import template_store
from tests.support import core_v1, wait_for
from tests.support.watcher import replace_watcher
from tests.support.workers import (NAMESPACE, admit, ledger_state, make_job, make_settings, pod_name,
                              redeliver, releasing, results_for)


@pytest.fixture
def settings(redis_url, kubesim, tmp_path):
    (tmp_path / "templates").mkdir()
    return make_settings(redis_url, kubesim.kubeconfig, templates_dir=str(tmp_path / "templates"))


@pytest.fixture
def admin(kubesim):
    return kubesim.admin()


def creates_of(admin, job) -> int:
    return admin.create_count(namespace=NAMESPACE, name_prefix=pod_name(job))


def jobs_handled() -> float:
    """Jobs this process's workers finished handling, whatever the outcome (podq_pod_creates_total)."""
    return sum(sample.value for family in metrics.REGISTRY.collect() if family.name == "podq_pod_creates"
               for sample in family.samples if sample.name == "podq_pod_creates_total")


@contextlib.contextmanager
def handled(client, *, jobs: int):
    """After the block: ``jobs`` more jobs handled, and every queued message delivered and acknowledged.

    The queue and kombu's unacked zset alone can both look empty while a popped message is on its
    way to a worker thread (kombu records it as unacked just after the pop), so the outcome count
    is what says the jobs were really handled.
    """
    before = jobs_handled()
    yield
    wait_for(lambda: jobs_handled() - before >= jobs and client.llen("podq.pods") == 0
             and client.zcard("unacked_index") == 0, message=f"{jobs} jobs handled and every message acknowledged")


def wait_created(client, jobs, timeout=15.0):
    wait_for(lambda: all(ledger_state(client, job) == "created" for job in jobs), timeout=timeout,
             message="every job created")


def wait_failed(client, job, timeout=15.0):
    return wait_for(lambda: [r for r in results_for(client, job) if r.state is State.FAILED], timeout=timeout,
                    message=f"a failed result for {job.job_id}")[0]


def test_each_job_gets_one_pod_even_when_its_message_comes_again(redis_client, settings, admin, podq_worker):
    jobs = [make_job(n) for n in range(10)]
    with podq_worker(settings):
        admit(redis_client, jobs)
        wait_created(redis_client, jobs)
        with handled(redis_client, jobs=len(jobs)):
            redeliver(redis_client, jobs)
    assert [creates_of(admin, job) for job in jobs] == [1] * 10
    entry = Ledger(redis_client).get(jobs[0].job_id)
    assert entry.uid and entry.deliveries == 1
    pod = admin.creates(namespace=NAMESPACE, name_prefix=pod_name(jobs[0]))[0]
    assert pod["uid"] == entry.uid


def test_a_409_from_our_own_pod_counts_as_created(redis_client, settings, admin, kubesim, podq_worker):
    job = make_job(1)
    kube = Kube(api_client(settings.kube, pool_size=2), request_timeout=2)
    existing = kube.create_pod(build_pod(job, template=template_store(None).get(None), namespace=NAMESPACE))
    with podq_worker(settings):
        admit(redis_client, [job])
        wait_created(redis_client, [job])
    assert Ledger(redis_client).get(job.job_id).uid == existing.uid
    assert creates_of(admin, job) == 1 and results_for(redis_client, job) == []
    kube.close()


def test_a_409_from_another_jobs_pod_fails_and_is_not_ours(redis_client, settings, admin, podq_worker):
    job = make_job(1)
    kube = Kube(api_client(settings.kube, pool_size=2), request_timeout=2)
    stranger = {"metadata": {"name": pod_name(job), "namespace": NAMESPACE,
                             "annotations": {naming.JOB_ID_KEY: "f" * 32}},
                "spec": {"containers": [{"name": "base", "image": "x"}]}}
    kube.create_pod(stranger)
    kube.close()
    with podq_worker(settings):
        admit(redis_client, [job])
        failed = wait_failed(redis_client, job)
    assert failed.source is Source.WORKER
    assert failed.failure_details.reason == "PodNameConflict"
    assert "f" * 32 in failed.failure_details.message
    assert Ledger(redis_client).get(job.job_id).uid is None
    assert ledger_state(redis_client, job) == "terminal"


def test_429_waits_for_retry_after_then_creates(redis_client, settings, admin, podq_worker):
    job = make_job(1)
    admin.add_fault(action="429", verb="create", count=1, retry_after=1)
    with podq_worker(settings):
        started = time.monotonic()
        admit(redis_client, [job])
        wait_created(redis_client, [job])
    assert time.monotonic() - started >= 1.0
    assert creates_of(admin, job) == 1


def test_429_longer_than_the_budget_goes_through_the_delayed_set(redis_client, settings, admin, podq_worker):
    job = make_job(1)
    admin.add_fault(action="429", verb="create", count=1, retry_after=2)   # budget is 5 s / 3
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, [job])
        wait_created(redis_client, [job])
    entry = redis_client.hgetall(f"podq:job:{job.job_id}")
    assert entry[b"delays"] == b"1" and entry[b"deliveries"] == b"1"
    assert creates_of(admin, job) == 1


def delayed_for(cause: str) -> float:
    return sum(sample.value for family in metrics.REGISTRY.collect() if family.name == "podq_jobs_delayed"
               for sample in family.samples if sample.name == "podq_jobs_delayed_total"
               and sample.labels["cause"] == cause)


def test_a_job_that_waits_for_a_create_slot_past_its_lease_is_handed_back_not_created_late(
        redis_client, redis_url, kubesim, admin, podq_worker):
    # One create slot, creates of 0.35 s, a budget of 5 s / 3: a message of 6 jobs cannot start its last
    # creates in time (the 5th would start at 1.4 s, after the budget less one create timeout, 1.17 s).
    settings = make_settings(redis_url, kubesim.kubeconfig, creates_in_flight=1)
    admin.set_latency("create", seconds=0.35)
    jobs = [make_job(n) for n in range(6)]
    before = delayed_for("budget")
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, jobs, per_message=6)
        wait_created(redis_client, jobs, timeout=30)
    admin.clear_latency()
    assert [creates_of(admin, job) for job in jobs] == [1] * 6
    handed_back = [job for job in jobs if redis_client.hget(f"podq:job:{job.job_id}", "waits")]
    assert handed_back and delayed_for("budget") - before >= len(handed_back)
    # A hand-off, not a crash: the poison guard does not count it as a delivery that died, and a wait
    # for a slot is not an API error's retry (``delays``, which PODQ_WORKER_MAX_DELAYS limits).
    assert all(redis_client.hget(f"podq:job:{job.job_id}", "waits") == b"1" and
               redis_client.hget(f"podq:job:{job.job_id}", "delays") is None and
               Ledger(redis_client).get(job.job_id).deliveries == 1 for job in handed_back)


def test_500s_retry_with_backoff_then_create(redis_client, settings, admin, podq_worker):
    job = make_job(1)
    admin.add_fault(action="500", verb="create", count=2)
    admin.add_fault(action="503", verb="create", count=1)
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, [job])
        wait_created(redis_client, [job])
    assert creates_of(admin, job) == 1


def test_endless_503_fails_after_the_delay_limit_with_the_api_reason(redis_client, settings, admin, redis_url,
                                                                     kubesim, podq_worker):
    settings = make_settings(redis_url, kubesim.kubeconfig, max_delays=2, visibility_timeout=1.5)
    job = make_job(1)
    admin.add_fault(action="503", verb="create")
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, [job])
        failed = wait_failed(redis_client, job, timeout=30)
    assert "gave up after 2 delayed retries" in failed.failure_details.message
    assert "503" in failed.failure_details.message
    assert creates_of(admin, job) == 0


@pytest.mark.parametrize("case", ["403", "404", "422"])
def test_permanent_errors_fail_at_once_with_reason_and_message(redis_client, settings, admin, case, podq_worker):
    if case == "403":
        admin.add_fault(action="403", verb="create")
        job, reason = make_job(1), "Forbidden"
    elif case == "404":
        job, reason = make_job(1, namespace="no-such-namespace"), "NotFound"
    else:
        job = make_job(1, pod_override={"spec": {"containers": [{"name": "base", "image": ""}]}})
        reason = "Invalid"
    with podq_worker(settings):
        started = time.monotonic()
        admit(redis_client, [job])
        failed = wait_failed(redis_client, job)
    assert time.monotonic() - started < 3
    details = failed.failure_details
    assert details.reason == reason and details.message and f"HTTP {case}" in details.message
    assert creates_of(admin, job) == 0


def test_latency_and_a_reset_before_the_create_still_give_one_pod(redis_client, settings, admin, podq_worker):
    jobs = [make_job(n) for n in range(4)]
    admin.set_latency("create", seconds=0.2)
    admin.add_fault(action="reset", verb="create", count=2)
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, jobs)
        wait_created(redis_client, jobs)
    assert [creates_of(admin, job) for job in jobs] == [1] * 4


@pytest.mark.parametrize("action", ["hang", "reset-after"])
def test_a_create_that_landed_without_an_answer_is_found_by_name(redis_client, settings, admin, action, podq_worker):
    job = make_job(1)
    admin.add_fault(action=action, verb="create", count=1)
    with podq_worker(settings):
        admit(redis_client, [job])
        wait_created(redis_client, [job])
    admin.release_hung()
    assert creates_of(admin, job) == 1
    assert Ledger(redis_client).get(job.job_id).uid == admin.creates(name_prefix=pod_name(job))[0]["uid"]


def test_slow_creates_near_the_timeout_give_one_pod_each(redis_client, settings, admin, podq_worker):
    jobs = [make_job(n) for n in range(8)]
    admin.set_latency("create", seconds=0.3, jitter=0.3)   # some answers come after the 0.5 s timeout
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, jobs)
        wait_created(redis_client, jobs, timeout=30)
    assert [creates_of(admin, job) for job in jobs] == [1] * 8


def test_template_problems_fail_the_job_naming_the_template(redis_client, settings, admin, podq_worker):
    templates = settings.intake.templates_dir
    with open(f"{templates}/broken.yaml", "w") as handle:
        handle.write("kind: Pod\nspec: {containers: [unclosed\n password: s3cret\n")
    bad, missing = make_job(1, pod_template="broken"), make_job(2, pod_template="vanished")
    with podq_worker(settings):
        admit(redis_client, [bad, missing])
        failures = [wait_failed(redis_client, bad), wait_failed(redis_client, missing)]
    assert [f.failure_details.reason for f in failures] == ["PodTemplateError"] * 2
    assert "'broken'" in failures[0].failure_details.message
    assert "s3cret" not in failures[0].failure_details.message
    assert "no template named 'vanished' is configured" in failures[1].failure_details.message


def test_a_job_the_ledger_has_ended_or_revoked_creates_nothing(redis_client, settings, admin, podq_worker):
    revoked, done = make_job(1), make_job(2)
    ledger = Ledger(redis_client)
    ledger.accept_many([(revoked, pod_name(revoked)), (done, pod_name(done))])
    ledger.revoke(revoked.job_id)
    redis_client.hset(f"podq:job:{done.job_id}", mapping={"state": "terminal", "terminal_state": "succeeded"})
    with podq_worker(settings):
        with handled(redis_client, jobs=2):
            redeliver(redis_client, [revoked, done])
    assert admin.create_count(namespace=NAMESPACE) == 0


def test_a_job_revoked_while_its_create_is_retried_is_not_created(redis_client, settings, admin, podq_worker):
    """A revoke (Airflow moved past the launch) that lands while the worker waits out API errors wins."""
    job = make_job(1)
    fault = admin.add_fault(action="500", verb="create")
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, [job])
        wait_for(lambda: admin.faults()[0]["fired"] >= 1, message="a create refused with 500")
        with handled(redis_client, jobs=1):
            Ledger(redis_client).revoke(job.job_id)
            admin.remove_fault(fault)
    assert creates_of(admin, job) == 0
    assert ledger_state(redis_client, job) == "revoked"


def test_poison_guard_fails_a_job_after_too_many_deliveries(redis_client, settings, admin, podq_worker):
    job = make_job(1)
    ledger = Ledger(redis_client)
    ledger.accept_many([(job, pod_name(job))])
    for n in range(settings.worker.max_deliveries):   # deliveries whose worker died (leases run out)
        ledger.claim_job(job.job_id, Lease(token=f"dead-{n}", seconds=0, grace=0))
    with podq_worker(settings):
        redeliver(redis_client, [job])
        failed = wait_failed(redis_client, job)
    assert failed.failure_details.reason == "PoisonJob"
    assert "delivered 6 times" in failed.failure_details.message
    assert admin.create_count(namespace=NAMESPACE) == 0


def test_an_override_that_lowers_limits_lowers_the_default_requests_and_the_pod_is_created(
        redis_client, settings, admin, podq_worker):
    lowered = make_job(1, pod_override={"spec": {"containers": [{"resources": {"limits": {"memory": "128Mi"}}}]}})
    over = make_job(2, pod_override={"spec": {"containers": [{"resources": {
        "requests": {"memory": "1Gi"}, "limits": {"memory": "128Mi"}}}]}})
    with podq_worker(settings):
        admit(redis_client, [lowered, over])
        wait_created(redis_client, [lowered])
        failed = wait_failed(redis_client, over)
    with core_v1(settings.kube.kubeconfig) as v1:
        pod = v1.read_namespaced_pod(pod_name(lowered), NAMESPACE)
    assert pod.spec.containers[0].resources.requests["memory"] == "128Mi"
    # A request the override itself sets above its limit is the API server's 422, as the job's failure.
    assert failed.failure_details.reason == "Invalid" and "HTTP 422" in failed.failure_details.message
    assert "must be less than or equal to memory limit of 128Mi" in failed.failure_details.message
    assert creates_of(admin, over) == 0


def test_a_pod_that_ends_before_its_creates_answer_is_kept_and_one_from_before_the_end_is_removed(
        redis_client, settings, admin, tmp_path, podq_worker):
    """Both creates are stored and their answers held back, with a real watcher on the namespace.

    ``fast`` fails meanwhile: the watcher's failed result ends its job and records its pod's uid, so
    the worker, finding the ledger terminal, keeps the pod (failed pods are kept, marked done).
    ``ended``'s job is called lost by a result about no pod (as the reconciler publishes it) while
    its pod runs: that pod came after the end, and the worker removes it.
    """
    annotations = {"metadata": {"annotations": {"kubesim.podq.io/outcome": "Failed"}}}
    fast = make_job(1, run_seconds=0.1, pod_override=annotations)
    ended = make_job(2, run_seconds=30)
    slow = dataclasses.replace(settings, kube=dataclasses.replace(settings.kube, request_timeout=30.0),
                               worker=dataclasses.replace(settings.worker, visibility_timeout=120.0))
    slow = replace_watcher(slow, lease_ttl=2.0, lease_poll=0.2)
    for job in (fast, ended):
        admin.hang_creates(count=1, namespace=NAMESPACE, name_prefix=pod_name(job))
    watcher = Watcher(slow, namespaces=[NAMESPACE], health_file=str(tmp_path / "health.json")).start()
    try:
        with podq_worker(slow), core_v1(settings.kube.kubeconfig) as v1:
            with handled(redis_client, jobs=2):
                admit(redis_client, [fast, ended])
                wait_failed(redis_client, fast, timeout=30)
                wait_for(lambda: State.RUNNING in [r.state for r in results_for(redis_client, ended)], timeout=30,
                         message="the second pod running")
                Publisher(redis_client).publish([KubernetesWatch.build(
                    job_id=ended.job_id, scheduler_id=ended.scheduler_id, key=ended.key, source=Source.WATCHER,
                    state=State.LOST, failure_details=FailureDetails(reason="PodMissing", message="test"))])
                assert admin.release_hung() == 2      # the answers are lost: the worker finds each pod by name

            def labels(job):
                return v1.read_namespaced_pod(pod_name(job), NAMESPACE).metadata.labels
            wait_for(lambda: labels(fast).get(naming.EXECUTOR_DONE) == "True", timeout=15,
                     message="the failed pod marked done by the completion policy")
            assert naming.POD_REVOKED not in labels(fast)
            pods = lambda: {pod.metadata.name for pod in v1.list_namespaced_pod(NAMESPACE).items}  # noqa: E731
            wait_for(lambda: pod_name(ended) not in pods(), timeout=15, message="the late pod removed")
    finally:
        watcher.close()
    assert Ledger(redis_client).get(fast.job_id).uid == admin.creates(name_prefix=pod_name(fast))[0]["uid"]
    assert [r.state for r in results_for(redis_client, fast) if r.state.terminal] == [State.FAILED]
    assert [r.state for r in results_for(redis_client, ended) if r.state.terminal] == [State.LOST]


def test_the_terminal_latch_records_its_pods_uid_only_where_the_ledger_has_none(redis_client):
    waiting, created = make_job(1), make_job(2)
    admit(redis_client, [waiting, created])
    ledger = Ledger(redis_client)
    ledger.mark_created(created.job_id, uid="created-uid")

    def failed(job, uid):
        return Item(result=KubernetesWatch.build(job_id=job.job_id, scheduler_id=job.scheduler_id, key=job.key,
                                                 source=Source.WATCHER, state=State.FAILED), pod_uid=uid)
    Publisher(redis_client).publish_items([failed(waiting, "pod-uid"), failed(created, "other-uid")])
    assert ledger.get(waiting.job_id).uid == "pod-uid"
    assert ledger.get(created.job_id).uid == "created-uid"


def test_the_pods_of_one_message_are_recorded_created_in_one_script_call(redis_client, settings, admin,
                                                                          podq_worker):
    """Every command the server runs is watched (MONITOR): the created-marking of a message of six jobs
    is one call of ``lua/created.lua`` naming all six ledger hashes, not one call per job."""
    jobs = [make_job(n) for n in range(6)]
    sha = scripts_for(redis_client).created.sha
    commands: list[str] = []
    watching = threading.Event()

    def monitor() -> None:
        with redis_client.monitor() as server:
            watching.set()
            for command in server.listen():
                commands.append(command["command"])
                if END_OF_WATCH in command["command"]:
                    return

    watcher = threading.Thread(target=monitor, name="test-monitor", daemon=True)
    watcher.start()
    assert watching.wait(15), "MONITOR never started"
    try:
        with podq_worker(settings), handled(redis_client, jobs=len(jobs)):
            admit(redis_client, jobs, per_message=len(jobs))
            wait_created(redis_client, jobs)
    finally:
        redis_client.echo(END_OF_WATCH)
        watcher.join(15)
    assert not watcher.is_alive()
    marks = [command for command in commands if command.startswith(f"EVALSHA {sha} ")]
    assert len(marks) == 1, marks
    assert all(keys.job_key(job.job_id) in marks[0] for job in jobs)
    assert {Ledger(redis_client).get(job.job_id).uid for job in jobs} == {
        pod["uid"] for job in jobs for pod in admin.creates(namespace=NAMESPACE, name_prefix=pod_name(job))}


END_OF_WATCH = "podq-test-end-of-monitor"


def test_a_quota_refusal_tells_the_scheduler_why_its_pod_waits_then_the_pod_is_created(
        redis_client, settings, admin, podq_worker):
    job = make_job(1)
    rule = admin.add_fault(action="quota", verb="create")   # until the quota frees up (the rule goes)
    with podq_worker(settings), releasing(redis_client):
        admit(redis_client, [job])
        waiting = wait_for(lambda: [r for r in results_for(redis_client, job) if r.state is State.PENDING],
                           timeout=30, message="a pending result naming the quota")[0]
        assert creates_of(admin, job) == 0
        admin.remove_fault(rule)
        wait_created(redis_client, [job], timeout=30)
    assert waiting.source is Source.WORKER and waiting.event_id.startswith(f"{job.job_id}:pending:create-")
    assert waiting.pending_reason.reason == "FailedCreate"
    assert "exceeded quota" in waiting.pending_reason.message and "(HTTP 403)" in waiting.pending_reason.message
    assert creates_of(admin, job) == 1
