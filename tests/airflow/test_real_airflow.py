"""The proof with a real Airflow 3: API server, DAG processor and scheduler, tasks run as processes by
kubesim's container runtime, first through podq's executor, then through Airflow's own
KubernetesExecutor on the same kubesim as the reference; then a scheduler killed with SIGKILL.

Quick pass (`make airflow-test-quick`): podq's executor runs the proof DAGs (tests/airflow/dags/proof.py)
and every task instance ends as the KubernetesExecutor ends it (EXPECTED). Slow (`make airflow-test`):
the KubernetesExecutor reference run itself, and the scheduler kill with adoption.
"""
from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from podq.airflow.config import load_config
from podq.airflow.executor import PodqExecutor
from tests.support import core_v1
from tests.support.airflow_system import AirflowSystem, airflow_world, kubernetes_airflow, podq_airflow

pytestmark = pytest.mark.timeout(1800)  # real processes on a shared machine: minutes, not seconds

DAGS = Path(__file__).parent / "dags"
PROOF_DAGS = ["proof_parallel", "proof_retry", "proof_mapped", "proof_override", "proof_timeout",
              "proof_clear", "proof_deleted"]
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}

# (dag_id, task_id, map_index) -> (state, try_number): what the KubernetesExecutor reaches (the slow
# reference test checks it against a real run of it on the same kubesim).
EXPECTED: dict[tuple[str, str, int], tuple[str, int]] = {
    **{("proof_parallel", f"work_{index:02d}", -1): ("success", 1) for index in range(20)},
    ("proof_retry", "flaky", -1): ("success", 2),
    **{("proof_mapped", "square", index): ("success", 1) for index in range(3)},
    ("proof_override", "overridden", -1): ("success", 1),
    ("proof_timeout", "too_slow", -1): ("failed", 1),
    ("proof_clear", "long_then_short", -1): ("success", 2),
    ("proof_deleted", "victim", -1): ("failed", 1),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with airflow_world(tmp_path_factory.mktemp("airflow-proof"), dags_folder=DAGS) as running:
        yield running


def run_proof(system: AirflowSystem, world, run_id: str, *, while_victim_runs=None
              ) -> dict[tuple[str, str, int], tuple[str, int]]:
    """Trigger every proof DAG, clear one task and delete one pod while they run; the end states."""
    system.wait_for_dags(PROOF_DAGS + ["proof_adopt"])
    for dag_id in PROOF_DAGS:
        system.trigger(dag_id, run_id)

    def state(dag_id: str, task_id: str) -> tuple[str | None, int] | None:
        return system.task_instances().get((dag_id, task_id, -1))

    system.wait(lambda: state("proof_clear", "long_then_short") == ("running", 1), timeout=600,
                what="proof_clear.long_then_short running")
    system.clear("proof_clear", run_id, "long_then_short")

    system.wait(lambda: state("proof_deleted", "victim") == ("running", 1), timeout=600,
                what="proof_deleted.victim running")
    if while_victim_runs is not None:
        while_victim_runs()
    with core_v1(world["stack"].kubeconfig) as api:
        pods = api.list_namespaced_pod("default", label_selector="dag_id=proof_deleted,task_id=victim").items
        live = [pod for pod in pods if pod.status.phase == "Running"]
        assert len(live) == 1, [(pod.metadata.name, pod.status.phase) for pod in pods]
        api.delete_namespaced_pod(live[0].metadata.name, "default")

    def finished():
        instances = {key: value for key, value in system.task_instances().items() if key[0] in PROOF_DAGS}
        return instances if len(instances) == len(EXPECTED) and all(
            state in FINISHED for state, _ in instances.values()) else None
    return system.wait(finished, timeout=900, what="every proof task instance to finish")


@pytest.fixture(scope="module")
def podq_run(world):
    # Every Airflow here serves the same API port (the task pods' env names it): one at a time.
    logs: list = []

    def read_victim_log():
        # What the API server's PodqExecutor does for a running task's log ([podq_executor] logs_from_kubernetes).
        config = load_config(lambda option: {"redis_url": world["stack"].redis_url, "logs_from_kubernetes": "true",
                                             "kube_config_file": world["stack"].kubeconfig}.get(option), env={})
        executor = PodqExecutor(parallelism=1, config=config)
        victim = SimpleNamespace(dag_id="proof_deleted", task_id="victim", run_id="podq_proof", map_index=-1,
                                 queue="default")
        logs.append(executor.get_task_log(victim, 1))

    with podq_airflow(world, "podq-airflow") as system:
        states = run_proof(system, world, "podq_proof", while_victim_runs=read_victim_log)
    return {"states": states, "victim_log": logs[0]}


def test_podq_executor_ends_every_task_as_the_kubernetes_executor_does(podq_run):
    assert podq_run["states"] == EXPECTED


def test_get_task_log_reads_a_running_tasks_pod_log(podq_run):
    lines, messages = podq_run["victim_log"]
    assert len(messages) == 1 and messages[0].startswith("podq: last 100 lines of pod default/proof-deleted-victim-"), \
        messages
    assert len(lines) == 1 and isinstance(lines[0], str)


def test_podq_pods_carry_the_kubernetes_executors_identity_and_the_override(world, podq_run):
    creates = world["admin"].creates()
    names = [entry["name"] for entry in creates]
    assert any(name.startswith("proof-override-overridden-") for name in names)
    # Every task try was created once: 20 + retry's 2 tries + 3 mapped + 1 + 1 + clear's 2 tries + 1.
    proof = [name for name in names if name.startswith("proof-")]
    assert len(proof) == 30, sorted(proof)


@pytest.mark.slow
def test_kubernetes_executor_reference_reaches_the_same_states(world, podq_run):
    with kubernetes_airflow(world, "k8s-airflow") as system:
        states = run_proof(system, world, "k8s_proof")
    assert states == EXPECTED == podq_run["states"]


@pytest.mark.slow
def test_scheduler_sigkill_then_restart_adopts_every_running_task_once(world):
    admin = world["admin"]
    with podq_airflow(world, "podq-adopt") as system:
        system.wait_for_dags(["proof_adopt"])
        system.trigger("proof_adopt", "adopt_proof")

        def adopt_states():
            return {key[1]: value for key, value in system.task_instances().items() if key[0] == "proof_adopt"}
        system.wait(lambda: len(adopt_states()) == 6 and all(s == ("running", 1) for s in adopt_states().values()),
                    timeout=600, what="6 proof_adopt tasks running")
        first_jobs = system.scheduler_jobs()
        system.kill("scheduler", signal.SIGKILL)
        system.start_scheduler()
        system.wait(lambda: all(state == "success" for state, _ in adopt_states().values()), timeout=600,
                    what="the adopted tasks to succeed")
        final = adopt_states()
        jobs = system.scheduler_jobs()
    assert all(value == ("success", 1) for value in final.values()), final
    assert len(jobs) == len(first_jobs) + 1, "a new scheduler job took over"
    creates = [entry["name"] for entry in admin.creates() if entry["name"].startswith("proof-adopt-")]
    assert len(creates) == 6, f"each running task was launched once, not again after the restart: {creates}"
