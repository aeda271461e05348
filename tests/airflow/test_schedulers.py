"""Several Airflow schedulers at once (Airflow's HA mode, one PostgreSQL), each with podq's executor.

Slow (`make airflow-test`): two schedulers run the lifecycle matrix of test_lifecycle.py — a rescheduled
sensor's next poke and a deferred task's resume may be queued by either scheduler — and every task
instance ends as under the KubernetesExecutor with one pod per launch. Matrix (`make airflow-matrix`): two
and three schedulers run a 50-way dynamic map with a failing item and an ``all_done`` reducer three times
in a row; the KubernetesExecutor reference runs it once.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.airflow_lifecycle import EXPECTED as LIFECYCLE_EXPECTED
from tests.support.airflow_lifecycle import LAUNCHES as LIFECYCLE_LAUNCHES
from tests.support.airflow_lifecycle import run_matrix
from tests.support.airflow_system import AirflowSystem, airflow_world, kubernetes_airflow, podq_airflow

pytestmark = pytest.mark.timeout(3600)  # real processes on a shared machine: minutes, not seconds

DAGS = Path(__file__).parent / "dags"
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}
MAP_WIDTH, FAILING_ITEM = 50, 13
RUNS = 3
# (task_id, map_index) -> (state, try_number) of one ha_map run under the KubernetesExecutor.
MAP_EXPECTED = {
    **{("item", index): ("success", 1) for index in range(MAP_WIDTH) if index != FAILING_ITEM},
    ("item", FAILING_ITEM): ("failed", 1),
    ("reduce", -1): ("success", 1),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with airflow_world(tmp_path_factory.mktemp("airflow-schedulers"), dags_folder=DAGS) as running:
        yield running


@pytest.mark.slow
def test_two_schedulers_run_every_lifecycle_with_one_pod_per_launch(world):
    with podq_airflow(world, "podq-ha-life", triggerer=True, schedulers=2) as system:
        result = run_matrix(system, world, "ha_life")
        jobs = system.scheduler_jobs()
    assert len([job for job in jobs if job[1] == "running"]) == 2, jobs
    assert result["states"] == LIFECYCLE_EXPECTED
    assert result["creates"] == LIFECYCLE_LAUNCHES


def run_maps(system: AirflowSystem, world, prefix: str) -> tuple[list[dict], dict[str, int]]:
    """``RUNS`` runs of ha_map one after another; each run's end states, and the pods created."""
    admin = world["admin"]
    admin.clear_creates()
    system.wait_for_dags(["ha_map"])
    runs = []
    for number in range(RUNS):
        run_id = f"{prefix}_{number}"
        system.trigger("ha_map", run_id)

        def finished():
            rows = system.task_instances_of_run("ha_map", run_id)
            return rows if len(rows) == len(MAP_EXPECTED) and all(
                state in FINISHED for state, _ in rows.values()) else None
        runs.append(system.wait(finished, timeout=1800, what=f"ha_map run {run_id} to finish"))
    creates = {"item": admin.create_count(name_prefix="ha-map-item-"),
               "reduce": admin.create_count(name_prefix="ha-map-reduce-")}
    return runs, creates


@pytest.mark.matrix
@pytest.mark.parametrize("schedulers", [2, 3])
def test_several_schedulers_run_the_map_as_the_kubernetes_executor_does(world, schedulers):
    with podq_airflow(world, f"podq-ha-{schedulers}", schedulers=schedulers) as system:
        runs, creates = run_maps(system, world, f"ha{schedulers}")
        queued_by = system.queued_by()
    for run in runs:
        assert run == MAP_EXPECTED
    assert creates == {"item": MAP_WIDTH * RUNS, "reduce": RUNS}, "one pod per try, none for another's task"
    assert len(queued_by) >= 2, f"the schedulers shared the work: {queued_by}"


@pytest.mark.matrix
def test_kubernetes_executor_reference_runs_the_map_once(world):
    with kubernetes_airflow(world, "k8s-ha") as system:
        system.wait_for_dags(["ha_map"])
        system.trigger("ha_map", "k8s_map")

        def finished():
            rows = system.task_instances_of_run("ha_map", "k8s_map")
            return rows if len(rows) == len(MAP_EXPECTED) and all(
                state in FINISHED for state, _ in rows.values()) else None
        run = system.wait(finished, timeout=1800, what="the reference map run to finish")
    assert run == MAP_EXPECTED
