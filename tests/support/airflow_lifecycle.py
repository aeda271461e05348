"""The lifecycle matrix's DAGs, expectations and run (tests/airflow/test_lifecycle.py, test_schedulers.py).

The DAGs are in tests/airflow/dags/lifecycle.py; every task instance must end as under the
KubernetesExecutor (EXPECTED) with one pod per launch (LAUNCHES).
"""
from __future__ import annotations

from typing import Any

from tests.support.airflow_system import AirflowSystem

LIFE_DAGS = ["life_reschedule", "life_poke", "life_deferrable_sensor", "life_defer_twice", "life_defer_timeout",
             "life_defer_clear", "life_defer_execution_timeout", "life_callbacks", "life_pool"]
POOL = "life_pool"
WEIGHTS = (1, 2, 3, 4)
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}

# (dag_id, task_id, map_index) -> (state, try_number) under the KubernetesExecutor (the slow test runs it).
EXPECTED: dict[tuple[str, str, int], tuple[str, int]] = {
    ("life_reschedule", "wait", -1): ("success", 1),
    ("life_reschedule", "after", -1): ("success", 1),
    ("life_poke", "wait", -1): ("success", 1),
    ("life_deferrable_sensor", "wait", -1): ("success", 1),
    ("life_deferrable_sensor", "after", -1): ("success", 1),
    ("life_defer_twice", "twice", -1): ("success", 1),
    ("life_defer_timeout", "deferred", -1): ("failed", 1),
    ("life_defer_clear", "deferred", -1): ("success", 2),
    ("life_defer_execution_timeout", "deferred", -1): ("success", 1),
    ("life_callbacks", "fails", -1): ("failed", 1),
    ("life_callbacks", "succeeds", -1): ("success", 1),
    **{("life_pool", f"weight_{weight}", -1): ("success", 1) for weight in WEIGHTS},
}
# Launches (pods) per task: three pokes in reschedule mode; one launch for poke mode; the deferrable
# sensor's first run and its resume; the task deferring twice runs three times.
LAUNCHES = {
    ("life_reschedule", "wait"): 3, ("life_reschedule", "after"): 1, ("life_poke", "wait"): 1,
    ("life_deferrable_sensor", "wait"): 2, ("life_deferrable_sensor", "after"): 1,
    ("life_defer_twice", "twice"): 3,
    # A deferral that times out is launched once more (to fail it); a task cleared while deferred runs
    # again as try 2.
    ("life_defer_timeout", "deferred"): 2, ("life_defer_clear", "deferred"): 2,
    # A deferral outlasting the task's execution_timeout is not timed out: the run and the resume.
    ("life_defer_execution_timeout", "deferred"): 2,
    ("life_callbacks", "fails"): 1, ("life_callbacks", "succeeds"): 1,
    **{("life_pool", f"weight_{weight}"): 1 for weight in WEIGHTS},
}
COUNTED = [("life_reschedule", "wait"), ("life_defer_twice", "twice"), ("life_poke", "wait"),
           ("life_defer_timeout", "deferred"), ("life_defer_clear", "deferred"),
           ("life_defer_execution_timeout", "deferred")]


def pod_prefix(dag_id: str, task_id: str) -> str:
    """Both executors start pod names with the slug of ``dag_id-task_id``."""
    return f"{dag_id}-{task_id}".replace("_", "-") + "-"


def launches_counted(world, run_id: str, dag_id: str, task_id: str) -> int:
    """How many times the task's code ran (tests/airflow/dags/lifecycle.py counts them)."""
    path = world["task_home"] / "launches" / run_id / f"{dag_id}.{task_id}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def run_matrix(system: AirflowSystem, world: dict[str, Any], run_id: str) -> dict:
    """Trigger every lifecycle DAG; the end states and the pods created per task."""
    admin = world["admin"]
    admin.clear_creates()
    system.wait_for_dags(LIFE_DAGS)
    system.api("POST", "/api/v2/pools", {"name": POOL, "slots": 1})
    for dag_id in LIFE_DAGS:
        system.trigger(dag_id, run_id)

    def state(dag_id: str, task_id: str) -> tuple[str | None, int] | None:
        return system.task_instances().get((dag_id, task_id, -1))
    system.wait(lambda: state("life_defer_clear", "deferred") == ("deferred", 1), timeout=600,
                what="life_defer_clear.deferred deferred")
    # Clear it once its trigger runs in the triggerer (its log says "starting"): cleared before the
    # triggerer picked the trigger up, the trigger never starts and its on_kill has nothing to kill.
    trigger_logs = system.home / "logs" / "dag_id=life_defer_clear" / f"run_id={run_id}" / "task_id=deferred"
    system.wait(lambda: any("starting" in path.read_text() for path in trigger_logs.glob("attempt=1.log.trigger.*.log")),
                timeout=600, what="life_defer_clear's trigger running in the triggerer")
    system.clear("life_defer_clear", run_id, "deferred")

    def finished():
        instances = {key: value for key, value in system.task_instances().items() if key[0] in LIFE_DAGS}
        return instances if len(instances) == len(EXPECTED) and all(
            state in FINISHED for state, _ in instances.values()) else None
    states = system.wait(finished, timeout=900, what="every lifecycle task instance to finish")
    creates = {(dag_id, task_id): admin.create_count(name_prefix=pod_prefix(dag_id, task_id))
               for dag_id, task_id in LAUNCHES}
    counted = {(dag_id, task_id): launches_counted(world, run_id, dag_id, task_id)
               for dag_id, task_id in COUNTED}
    callbacks = sorted({path.name for home in (world["task_home"], system.home)
                        for path in (home / "callbacks" / run_id).glob("*")})
    started = system.start_dates("life_pool", run_id)
    pool_order = [task_id for task_id, _ in sorted(started.items(), key=lambda item: item[1])]
    return {"states": states, "creates": creates, "counted": counted, "callbacks": callbacks,
            "pool_order": pool_order}


