"""One cell, two clusters: the embedded stack with a kubesim per cluster (`podq up --clusters a,b`).

Jobs are routed by their own ``cluster`` field, by ``PODQ_KUBE_ROUTES`` (namespace, scheduler id) and
by default; each pod is created in its cluster's kubesim and nowhere else, results carry the cluster,
a job naming an unknown cluster gets a ``failed`` result naming it, and revoke and adopt act on the
cluster that holds the pod. Everything runs as processes, through the unmodified clients.
"""
from __future__ import annotations

import time

import pytest

from podq.broker.client.control import revoke, send_control
from podq.broker.client.results import ResultsPeek
from podq.broker.client.submit import submit_many
from podq.broker.store.connection import connect
from podq.broker.store.ledger import Ledger
from podq.kubesim.admin import Admin
from podq.shared import naming
from podq.shared.records import ControlRecord, KubernetesJob, KubernetesResults, TaskKey
from podq.shared.settings import load_settings
from podq.shared.states import ControlOp, State
from podq.stack import Stack, StackOptions
from tests.support import core_v1, wait_for

pytestmark = pytest.mark.timeout(300)

SIM = "kubesim.podq.io/"
ENV = {
    "PODQ_KUBE_ROUTES": "namespace:team-b=b,scheduler:routed-*=b",
    "PODQ_INTAKE_NAMESPACES": "default,team-b",
    "PODQ_WATCHER_NAMESPACES": "*",
    "PODQ_WATCHER_LEASE_TTL": "3",
    "PODQ_WATCHER_LEASE_POLL": "0.5",
}


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    options = StackOptions(workers=1, worker_concurrency=4, clusters=("a", "b"), extra_env=ENV,
                           kubesim_args=("--namespace", "team-b"),
                           data_dir=str(tmp_path_factory.mktemp("cell")))
    with Stack(load_settings({}), options) as stack:
        try:
            yield stack
        except BaseException:
            print(f"service logs: {stack.log_dir}")
            raise


@pytest.fixture(scope="module")
def client(cell):
    redis = connect(cell.redis_url)
    yield redis
    redis.close()


@pytest.fixture(scope="module")
def pods(cell):
    """Each cluster's CoreV1Api, by cluster name."""
    with core_v1(cell.kubeconfigs["a"]) as on_a, core_v1(cell.kubeconfigs["b"]) as on_b:
        yield {"a": on_a, "b": on_b}


def job(scheduler: str, task: str, *, run_seconds: float = 0.2, **fields) -> KubernetesJob:
    key = TaskKey(dag_id="clusters", task_id=task, run_id=f"r-{time.time_ns()}")
    return KubernetesJob.new(scheduler_id=scheduler, key=key, command=["true"],
                             pod_override={"metadata": {"annotations": {f"{SIM}run-seconds": str(run_seconds)}}},
                             **fields)


def terminal(client, scheduler: str, jobs: list[KubernetesJob], *, timeout: float = 90.0) -> dict[str, KubernetesResults]:
    """Every job's terminal result on its scheduler's stream."""
    ends: dict[str, KubernetesResults] = {}
    peek = ResultsPeek(client, scheduler_id=scheduler)

    def done() -> bool:
        for result in peek.read():
            if result.terminal:
                ends.setdefault(result.job_id, result)
        return all(item.job_id in ends for item in jobs)
    wait_for(done, timeout=timeout, interval=0.2)
    return ends


def created_in(cell, cluster: str, item: KubernetesJob) -> int:
    return Admin.from_kubeconfig(cell.kubeconfigs[cluster]).create_count(
        name_prefix=naming.pod_name_for(item.job_id, item.key))


def test_jobs_land_on_the_cluster_their_field_rule_or_the_default_names(cell, client):
    scheduler = f"sched-{time.time_ns()}"
    by_field_b = job(scheduler, "field-b", cluster="b")
    by_field_a = job(scheduler, "field-a", cluster="a")
    by_namespace = job(scheduler, "rule-namespace", namespace="team-b")
    by_default = job(scheduler, "default")
    routed = f"routed-{time.time_ns()}"
    by_scheduler = job(routed, "rule-scheduler")
    submit_many(client, [by_field_b, by_field_a, by_namespace, by_default])
    submit_many(client, [by_scheduler])
    ends = terminal(client, scheduler, [by_field_b, by_field_a, by_namespace, by_default])
    ends.update(terminal(client, routed, [by_scheduler]))
    expected = {by_field_b.job_id: "b", by_field_a.job_id: "a", by_namespace.job_id: "b",
                by_default.job_id: "a", by_scheduler.job_id: "b"}
    ledger = Ledger(client)
    for item in (by_field_b, by_field_a, by_namespace, by_default, by_scheduler):
        where = expected[item.job_id]
        other = "a" if where == "b" else "b"
        assert ends[item.job_id].state is State.SUCCEEDED, (item.key, ends[item.job_id])
        assert ends[item.job_id].cluster == where, item.key
        assert created_in(cell, where, item) == 1, f"{item.key}: one create in cluster {where}"
        assert created_in(cell, other, item) == 0, f"{item.key}: nothing created in cluster {other}"
        # The ledger keeps the default as no cluster at all (a single-cluster cell's entries are unchanged).
        assert ledger.get(item.job_id).cluster == (None if where == "a" else where)


def test_a_job_naming_an_unknown_cluster_fails_with_a_reason_naming_it(cell, client):
    scheduler = f"sched-{time.time_ns()}"
    lost = job(scheduler, "unknown", cluster="zz")
    submit_many(client, [lost])
    result = terminal(client, scheduler, [lost])[lost.job_id]
    assert result.state is State.FAILED
    assert result.failure_details.reason == "Rejected"
    assert "job.cluster: 'zz' is not a cluster of this cell (clusters: a, b)" in result.failure_details.message
    assert created_in(cell, "a", lost) == 0 and created_in(cell, "b", lost) == 0


def test_revoke_acts_on_the_cluster_that_holds_the_pod(cell, client, pods):
    scheduler = f"sched-{time.time_ns()}"
    on_b = job(scheduler, "long-b", cluster="b", run_seconds=120)
    on_a = job(scheduler, "long-a", cluster="a", run_seconds=120)
    submit_many(client, [on_b, on_a])
    pods_b, pods_a = pods["b"], pods["a"]
    name_b, name_a = naming.pod_name_for(on_b.job_id, on_b.key), naming.pod_name_for(on_a.job_id, on_a.key)

    def running(pods, name: str) -> bool:
        found = pods.list_namespaced_pod("default", field_selector=f"metadata.name={name}").items
        return bool(found) and found[0].status.phase == "Running"
    wait_for(lambda: running(pods_b, name_b) and running(pods_a, name_a), timeout=60, interval=0.2)
    revoke(client, job_id=on_b.job_id, scheduler_id=scheduler, reason="test")
    result = terminal(client, scheduler, [on_b])[on_b.job_id]
    assert result.state is State.REVOKED
    wait_for(lambda: not pods_b.list_namespaced_pod("default", field_selector=f"metadata.name={name_b}").items,
             timeout=30, interval=0.2)
    assert running(pods_a, name_a), "the other cluster's pod is untouched"
    revoke(client, job_id=on_a.job_id, scheduler_id=scheduler, reason="test")
    assert terminal(client, scheduler, [on_a])[on_a.job_id].state is State.REVOKED


def test_adoption_relabels_the_pods_on_every_cluster(cell, client, pods):
    old, new = f"old-{time.time_ns()}", f"new-{time.time_ns()}"
    on_a = job(old, "adopt-a", cluster="a", run_seconds=6)
    on_b = job(old, "adopt-b", cluster="b", run_seconds=6)
    submit_many(client, [on_a, on_b])

    def owner(cluster: str, item: KubernetesJob) -> str | None:
        name = naming.pod_name_for(item.job_id, item.key)
        found = pods[cluster].list_namespaced_pod("default", field_selector=f"metadata.name={name}").items
        return (found[0].metadata.annotations or {}).get(naming.SCHEDULER_ID_KEY) if found else None
    wait_for(lambda: owner("a", on_a) == old and owner("b", on_b) == old, timeout=60, interval=0.2)
    send_control(client, ControlRecord(op=ControlOp.ADOPT, scheduler_id=old, new_scheduler_id=new,
                                       requested_at=time.time()))
    wait_for(lambda: owner("a", on_a) == new and owner("b", on_b) == new, timeout=60, interval=0.2)
    ends = terminal(client, new, [on_a, on_b])
    assert {ends[on_a.job_id].cluster, ends[on_b.job_id].cluster} == {"a", "b"}
    assert all(result.state is State.SUCCEEDED for result in ends.values())
