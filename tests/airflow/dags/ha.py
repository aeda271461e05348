"""The DAG of the several-schedulers runs (tests/airflow/test_schedulers.py): the same file for both executors.

A 50-way dynamic map with one failing item and an ``all_done`` reducer, the shape that once matched the
KubernetesExecutor on 156 of 156 task instances with two schedulers.
"""
from __future__ import annotations

import datetime

from airflow.sdk import dag, task

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
MAP_WIDTH = 50
FAILING_ITEM = 13


@dag(dag_id="ha_map", schedule=None, start_date=START, catchup=False, max_active_tasks=64)
def ha_map():
    @task(retries=0)
    def item(index: int) -> int:
        if index == FAILING_ITEM:
            raise RuntimeError(f"item {index} fails on purpose")
        return index

    @task(trigger_rule="all_done")
    def reduce() -> str:
        return "every item ended"

    item.expand(index=list(range(MAP_WIDTH))) >> reduce()


ha_map()
