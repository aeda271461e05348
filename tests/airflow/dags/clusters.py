"""The DAG of tests/airflow/test_real_airflow_clusters.py: tasks on two queues, and one naming its cluster.

The executor's ``queue_routes`` send queue ``east`` to cluster ``a`` and ``west`` to cluster ``b``;
``pinned`` is on queue ``east`` but names cluster ``b`` in its ``executor_config``.
"""
from __future__ import annotations

import datetime

from airflow.sdk import dag, task

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


@dag(dag_id="two_clusters", schedule=None, start_date=START, catchup=False)
def two_clusters():
    @task(queue="east")
    def east() -> str:
        return "east"

    @task(queue="west")
    def west() -> str:
        return "west"

    @task(queue="east", executor_config={"cluster": "b"})
    def pinned() -> str:
        return "pinned"

    east()
    west()
    pinned()


two_clusters()
