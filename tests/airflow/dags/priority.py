"""The DAG of the real-Airflow priority test (tests/airflow/test_real_airflow_priority.py).

``routine_*`` tasks (priority_weight 1) are queued at once and wait in podq's line behind a create
budget of one pod every five seconds; ``urgent`` (priority_weight 100) becomes runnable only when ``gate``
has finished, so it reaches podq after the routine tasks, and must be launched before those still
waiting then.
"""
from __future__ import annotations

import datetime

from airflow.sdk import dag, task

ROUTINE_TASKS = 24


@dag(dag_id="proof_priority", schedule=None, start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
     catchup=False, max_active_tasks=64)
def proof_priority():
    @task(priority_weight=1000, weight_rule="absolute", retries=2, retry_delay=datetime.timedelta(seconds=1))
    def gate() -> str:
        return "open"

    @task(priority_weight=100, weight_rule="absolute")
    def urgent(_opened: str) -> str:
        return "first"

    @task(priority_weight=1, weight_rule="absolute")
    def routine(index: int) -> int:
        return index

    urgent(gate())
    for index in range(ROUTINE_TASKS):
        routine.override(task_id=f"routine_{index:02d}")(index)


proof_priority()
