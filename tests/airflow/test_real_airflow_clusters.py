"""A real Airflow 3 through podq on a cell of two clusters (two kubesims running the task processes).

``[podq_executor] queue_routes`` routes queue ``east`` to cluster ``a`` and ``west`` to cluster ``b``
(docs/airflow.md, "Several clusters"); a task's ``executor_config={"cluster": ...}`` wins over its
queue's. Each task must run, and succeed, on the cluster its queue (or its own config) names, and
nowhere else.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from podq.kubesim.admin import Admin
from tests.support.airflow_system import airflow_world, podq_airflow

pytestmark = pytest.mark.timeout(1200)  # real processes on a shared machine: minutes, not seconds

DAGS = Path(__file__).parent / "dags"
ROUTES = '{"east": {"cluster": "a"}, "west": {"cluster": "b"}}'


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with airflow_world(tmp_path_factory.mktemp("airflow-clusters"), dags_folder=DAGS, clusters=("a", "b")) as running:
        yield running


def test_two_queues_run_on_the_two_clusters_their_routes_name(world):
    stack = world["stack"]
    system = podq_airflow(world, "podq-clusters")
    system.env["AIRFLOW__PODQ_EXECUTOR__QUEUE_ROUTES"] = ROUTES
    with system:
        system.wait_for_dags(["two_clusters"])
        system.trigger("two_clusters", "clusters_run")

        def finished():
            instances = system.task_instances_of_run("two_clusters", "clusters_run")
            done = {key: value for key, value in instances.items() if value[0] in ("success", "failed")}
            return instances if len(instances) == 3 and len(done) == 3 else None
        states = system.wait(finished, timeout=600, what="two_clusters' tasks to finish")
    assert {key[0]: state for key, (state, _try) in states.items()} == \
        {"east": "success", "west": "success", "pinned": "success"}
    created = {name: sorted(entry["name"].split("-")[2] for entry in Admin.from_kubeconfig(stack.kubeconfigs[name]).creates()
                            if entry["name"].startswith("two-clusters-"))
               for name in ("a", "b")}
    assert created == {"a": ["east"], "b": ["pinned", "west"]}
