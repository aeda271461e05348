"""Every way an Airflow task waits, through podq and through the KubernetesExecutor on the same kubesim.

A real Airflow 3 (API server, DAG processor, scheduler, triggerer) runs the DAGs of
tests/airflow/dags/lifecycle.py: a sensor in reschedule mode (each poke a launch of the same try), in
poke mode, the standard provider's deferrable sensor, a task that defers twice (to a standard and to a
custom trigger), a deferral that times out, a task cleared while deferred (its trigger's on_kill runs),
task and DAG callbacks, a pool of one slot with priority weights, and a deferral outlasting the task's
execution_timeout. Every task instance must end as under the KubernetesExecutor (EXPECTED), and
kubesim's create audit must show one pod per launch (LAUNCHES): as many as the task's code counted where
it counts them.

Quick pass (`make airflow-test-quick`): podq runs the matrix. Slow (`make airflow-test`): the
KubernetesExecutor reference on the same DAGs, and the scheduler killed with SIGKILL while a sensor waits
between pokes and while a task is deferred, under both executors.
"""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.airflow_lifecycle import (EXPECTED, FINISHED, LAUNCHES, WEIGHTS, launches_counted,
                                             pod_prefix, run_matrix)
from tests.support.airflow_system import AirflowSystem, airflow_world, kubernetes_airflow, podq_airflow

pytestmark = pytest.mark.timeout(1800)  # real processes on a shared machine: minutes, not seconds

DAGS = Path(__file__).parent / "dags"
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with airflow_world(tmp_path_factory.mktemp("airflow-lifecycle"), dags_folder=DAGS) as running:
        yield running


@pytest.fixture(scope="module")
def podq_matrix(world):
    with podq_airflow(world, "podq-life", triggerer=True) as system:
        return run_matrix(system, world, "podq_life")


def test_every_lifecycle_ends_as_under_the_kubernetes_executor(podq_matrix):
    assert podq_matrix["states"] == EXPECTED


def test_each_launch_is_one_pod(podq_matrix):
    """A reschedule or a resume is a new pod; nothing is launched twice."""
    assert podq_matrix["creates"] == LAUNCHES
    # Each poke of the reschedule sensor and each run of the twice-deferred task was one launch, one pod;
    # the poke-mode sensor poked three times in its one pod.
    assert podq_matrix["counted"] == {("life_reschedule", "wait"): 3, ("life_defer_twice", "twice"): 3,
                                      ("life_poke", "wait"): 3, ("life_defer_timeout", "deferred"): 1,
                                      ("life_defer_clear", "deferred"): 2,
                                      ("life_defer_execution_timeout", "deferred"): 2}


def test_task_and_dag_callbacks_run(podq_matrix):
    """Task callbacks run in the task's pod, the DAG's failure callback in the DAG processor, and the
    trigger's on_kill of a task cleared while deferred in the triggerer (no pod exists then to kill)."""
    assert podq_matrix["callbacks"] == ["dag_failure", "task_failure", "task_success", "trigger_on_kill"]


def test_a_pool_of_one_slot_runs_the_highest_priority_first(podq_matrix):
    assert podq_matrix["pool_order"] == [f"weight_{weight}" for weight in sorted(WEIGHTS, reverse=True)]


@pytest.mark.slow
def test_kubernetes_executor_reference_reaches_the_same_states_and_pods(world, podq_matrix):
    with kubernetes_airflow(world, "k8s-life", triggerer=True) as system:
        reference = run_matrix(system, world, "k8s_life")
    assert reference["states"] == EXPECTED == podq_matrix["states"]
    assert reference["creates"] == LAUNCHES == podq_matrix["creates"]
    assert reference["callbacks"] == podq_matrix["callbacks"]
    assert reference["pool_order"] == podq_matrix["pool_order"]


def kill_scheduler_while(system: AirflowSystem, world, *, dag_id: str, task_id: str, waiting_state: str,
                         run_id: str) -> tuple[tuple[str, int], int]:
    """Trigger ``dag_id``, SIGKILL the scheduler once ``task_id`` is in ``waiting_state``, start a new one;
    the task's end state and the pods created for it."""
    admin = world["admin"]
    admin.clear_creates()
    system.wait_for_dags([dag_id])
    system.trigger(dag_id, run_id)

    def state():
        return system.task_instances().get((dag_id, task_id, -1))
    system.wait(lambda: state() == (waiting_state, 1), timeout=600, what=f"{dag_id}.{task_id} {waiting_state}")
    system.kill("scheduler", signal.SIGKILL)
    system.start_scheduler()
    final = system.wait(lambda: state() if state() and state()[0] in FINISHED else None, timeout=600,
                        what=f"{dag_id}.{task_id} to finish after the restart")
    return final, admin.create_count(name_prefix=pod_prefix(dag_id, task_id))


EXECUTORS = {"podq": podq_airflow, "kubernetes": kubernetes_airflow}


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS)
def test_scheduler_sigkill_while_a_sensor_waits_between_pokes(world, executor):
    run_id = f"kill_reschedule_{executor}"
    with EXECUTORS[executor](world, f"{executor}-kill-reschedule") as system:
        final, creates = kill_scheduler_while(system, world, dag_id="life_kill_reschedule", task_id="wait",
                                              waiting_state="up_for_reschedule", run_id=run_id)
    assert final == ("success", 1)
    assert creates == launches_counted(world, run_id, "life_kill_reschedule", "wait") == 5, "one pod per poke, none again"


@pytest.mark.slow
@pytest.mark.parametrize("executor", EXECUTORS)
def test_scheduler_sigkill_while_a_task_is_deferred(world, executor):
    run_id = f"kill_defer_{executor}"
    with EXECUTORS[executor](world, f"{executor}-kill-defer", triggerer=True) as system:
        final, creates = kill_scheduler_while(system, world, dag_id="life_kill_defer", task_id="deferred",
                                              waiting_state="deferred", run_id=run_id)
    assert final == ("success", 1)
    assert creates == launches_counted(world, run_id, "life_kill_defer", "deferred") == 2, "the run and the resume"


@pytest.mark.slow
def test_a_launch_airflow_moved_past_while_its_create_was_held_back_is_never_created(world):
    """apache/airflow #69760's stale launch: cleared while queued, its create held back by 429s."""
    from podq.broker.client.jobs import job_status
    from podq.broker.store.connection import connect

    admin = world["admin"]
    prefix = pod_prefix("life_stale", "held")
    fault = admin.add_fault(action="429", verb="create", name_prefix=prefix, retry_after=2)
    client = connect(world["stack"].redis_url)
    try:
        with podq_airflow(world, "podq-stale") as system:
            system.wait_for_dags(["life_stale"])
            system.trigger("life_stale", "stale")
            first = system.wait(lambda: system.external_executor_id("life_stale", "held", try_number=1),
                                timeout=600, what="the first try queued with its podq job")
            system.wait(lambda: admin.faults() and admin.faults()[0]["fired"] >= 1, timeout=300,
                        what="the first try's create held back by a 429")
            system.clear("life_stale", "stale", "held")

            def revoked():
                status = job_status(client, first)
                return status is not None and status.entry.state.value == "revoked"
            system.wait(revoked, timeout=300, what="the first try's launch revoked")
            admin.remove_fault(fault)
            final = system.wait(lambda: (state := system.task_instances().get(("life_stale", "held", -1)))
                                and state[0] in FINISHED and state, timeout=600, what="the second try to end")
    finally:
        admin.clear_faults()
        client.close()
    assert final == ("success", 2)
    creates = admin.creates(name_prefix=prefix)
    assert len(creates) == 1, f"only the second try's launch is created: {creates}"
