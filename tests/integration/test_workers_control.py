"""Control operations through real Celery workers against kubesim: each one idempotent."""
from __future__ import annotations

import pytest

from podq.broker.control.operations import completion_request, validate_control
from podq.broker.control.sender import ControlSender
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import Publisher
from podq.broker.store import keys
from podq.shared import naming
from podq.shared.records import ControlRecord, KubernetesWatch
from podq.shared.states import ControlOp, Source, State
from podq.shared.kubeclient import api_client
from podq.workers.kube import Kube
from tests.support import wait_for
from tests.support.workers import (NAMESPACE, SCHEDULER, admit, control, ledger_state, make_job,
                              make_settings, pod_name, redeliver, results, results_for)


@pytest.fixture
def settings(redis_url, kubesim):
    return make_settings(redis_url, kubesim.kubeconfig)


@pytest.fixture
def kube(settings):
    kube = Kube(api_client(settings.kube, pool_size=2), request_timeout=2)
    yield kube
    kube.close()


def pod_or_none(kube, job):
    from podq.workers.errors import NotFoundError
    try:
        return kube.read_pod(pod_name(job), NAMESPACE)
    except NotFoundError:
        return None


def created(client, jobs):
    wait_for(lambda: all(ledger_state(client, job) == "created" for job in jobs), message="jobs created")


def drained(client):
    wait_for(lambda: client.llen(keys.CELERY_QUEUE) == 0 and not client.hlen("unacked"),
             message="every task done")


def test_revoke_before_the_create_publishes_revoked_and_no_pod_ever_appears(redis_client, settings, kubesim, podq_worker):
    job = make_job(1)
    Ledger(redis_client).accept_many([(job, pod_name(job))])
    with podq_worker(settings):
        control(redis_client, ControlOp.REVOKE, job_id=job.job_id)
        wait_for(lambda: results_for(redis_client, job), message="revoked result")
        control(redis_client, ControlOp.REVOKE, job_id=job.job_id)      # again: nothing new
        redeliver(redis_client, [job])                                  # a late create task
        drained(redis_client)
    assert [r.state for r in results_for(redis_client, job)] == [State.REVOKED]
    assert kubesim.admin().create_count(namespace=NAMESPACE) == 0
    assert ledger_state(redis_client, job) == "revoked"


def test_revoke_of_a_running_pod_labels_and_deletes_it(redis_client, settings, kube, podq_worker):
    job = make_job(1, run_seconds=60)
    with podq_worker(settings):
        admit(redis_client, [job])
        created(redis_client, [job])
        control(redis_client, ControlOp.REVOKE, job_id=job.job_id)
        wait_for(lambda: (pod := pod_or_none(kube, job)) is None or pod.deleting, message="pod deleting")
        control(redis_client, ControlOp.REVOKE, job_id=job.job_id)
        drained(redis_client)
    pod = pod_or_none(kube, job)
    assert pod is None or pod.labels.get(naming.POD_REVOKED) == "True"
    assert ledger_state(redis_client, job) == "revoked"


def test_mark_done_and_delete_are_idempotent(redis_client, settings, kube, podq_worker):
    done, gone = make_job(1, run_seconds=60), make_job(2, run_seconds=60)
    with podq_worker(settings):
        admit(redis_client, [done, gone])
        created(redis_client, [done, gone])
        for _ in range(2):
            control(redis_client, ControlOp.MARK_DONE, job_id=done.job_id)
            control(redis_client, ControlOp.DELETE, job_id=gone.job_id, delete_options={"gracePeriodSeconds": 0})
        wait_for(lambda: pod_or_none(kube, gone) is None, message="pod deleted")
        drained(redis_client)
    assert pod_or_none(kube, done).labels[naming.EXECUTOR_DONE] == "True"


def test_completion_policy_deletes_succeeded_pods_and_labels_failed_ones(redis_client, settings, kube, podq_worker):
    ok, bad = make_job(1, run_seconds=60), make_job(2, run_seconds=60)
    with podq_worker(settings):
        admit(redis_client, [ok, bad])
        created(redis_client, [ok, bad])
        ControlSender(redis_client).send([completion_request(job_id=ok.job_id, scheduler_id=SCHEDULER)])  # not terminal yet
        drained(redis_client)
        assert pod_or_none(kube, ok) is not None
        publisher = Publisher(redis_client)
        for job, state in ((ok, State.SUCCEEDED), (bad, State.FAILED)):
            publisher.publish([KubernetesWatch.build(job_id=job.job_id, scheduler_id=SCHEDULER, key=job.key,
                                                     source=Source.WATCHER, state=state)])
            ControlSender(redis_client).send([completion_request(job_id=job.job_id, scheduler_id=SCHEDULER)])
        wait_for(lambda: (pod := pod_or_none(kube, ok)) is None or pod.deleting, message="succeeded pod deleted")
        wait_for(lambda: pod_or_none(kube, bad).labels.get(naming.EXECUTOR_DONE) == "True",
                 message="failed pod kept and labelled done")


def test_adopt_moves_owner_unread_results_and_relabels_pods_once(redis_client, settings, kube, podq_worker):
    jobs = [make_job(n, run_seconds=60) for n in range(3)]
    finished = make_job(9)
    with podq_worker(settings):
        admit(redis_client, jobs)
        created(redis_client, jobs)
        Ledger(redis_client).accept_many([(finished, pod_name(finished))])
        publisher = Publisher(redis_client)
        # An unread terminal result on the old scheduler's stream.
        publisher.publish([KubernetesWatch.build(job_id=finished.job_id, scheduler_id=SCHEDULER, key=finished.key,
                                                 source=Source.WATCHER, state=State.SUCCEEDED)])
        for _ in range(2):
            control(redis_client, ControlOp.ADOPT, new_scheduler_id="sched-b")
        wait_for(lambda: all(pod_or_none(kube, job).annotations.get(naming.SCHEDULER_ID_KEY) == "sched-b"
                             for job in jobs), message="pods relabelled")
        drained(redis_client)
    for job in jobs:
        pod = pod_or_none(kube, job)
        assert pod.labels[naming.AIRFLOW_WORKER] == "sched-b"
        assert Ledger(redis_client).get(job.job_id).scheduler_id == "sched-b"
    old = results(redis_client, SCHEDULER)
    assert sorted(r.job_id for r in old) == sorted(job.job_id for job in jobs)
    assert {r.state for r in old} == {State.ADOPTED}
    moved = results(redis_client, "sched-b")
    assert [(r.job_id, r.state) for r in moved] == [(finished.job_id, State.SUCCEEDED)]
    # The job's own terminal result now reaches the new scheduler (adopted set no latch).
    Publisher(redis_client).publish([KubernetesWatch.build(job_id=jobs[0].job_id, scheduler_id=SCHEDULER,
                                                           key=jobs[0].key, source=Source.WATCHER,
                                                           state=State.SUCCEEDED)])
    assert results_for(redis_client, jobs[0], "sched-b")[-1].state is State.SUCCEEDED
    # Every result on the new scheduler's stream, moved or published after, names it as theirs;
    # the moved one is otherwise the same record (an empty annotations map stays a map).
    records = [KubernetesWatch.decode(fields[keys.RECORD_FIELD.encode()])
               for _id, fields in redis_client.xrange(keys.results_stream("sched-b"))]
    assert [r.scheduler_id for r in records] == ["sched-b", "sched-b"]
    assert records[0].annotations == {} and records[0].event_id == f"{finished.job_id}:succeeded"
    assert {KubernetesWatch.decode(fields[keys.RECORD_FIELD.encode()]).scheduler_id
            for _id, fields in redis_client.xrange(keys.results_stream(SCHEDULER))} == {SCHEDULER}


def test_validate_control(redis_client):
    ledger = Ledger(redis_client)
    job = make_job(1)
    ledger.accept_many([(job, pod_name(job))])

    def check(**fields):
        return validate_control(ControlRecord(**{"scheduler_id": SCHEDULER, **fields}), ledger)

    assert check(op=ControlOp.REVOKE, job_id=job.job_id) is None
    assert "no job" in check(op=ControlOp.REVOKE, job_id="0" * 32)
    assert "another scheduler" in check(op=ControlOp.REVOKE, job_id=job.job_id, scheduler_id="other")
    assert "own jobs" in check(op=ControlOp.ADOPT, new_scheduler_id=SCHEDULER)
    assert "podq's own" in check(op=ControlOp.COMPLETE, job_id=job.job_id)
    assert "not a delete option" in check(op=ControlOp.DELETE, job_id=job.job_id, delete_options={"force": True})
    assert check(op=ControlOp.DELETE, job_id=job.job_id, delete_options={"grace_period_seconds": 5}) is None
