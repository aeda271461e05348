"""The DAGs of the before-running proof (tests/airflow/test_real_airflow_pending.py).

``pending_unschedulable``: a task whose pod no node can take (kubesim's scheduler leaves it Pending with
its Unschedulable reason); ``pending_evicted``: a task whose first pod the test evicts before it starts.
"""
from __future__ import annotations

import datetime

from airflow.sdk import dag, task
from kubernetes.client import models as k8s

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
COMMON = {"schedule": None, "start_date": START, "catchup": False}

UNSCHEDULABLE = k8s.V1Pod(metadata=k8s.V1ObjectMeta(annotations={"kubesim.podq.io/outcome": "Unschedulable"}))


@dag(dag_id="pending_unschedulable", **COMMON)
def pending_unschedulable():
    @task(executor_config={"pod_override": UNSCHEDULABLE})
    def stuck() -> str:
        return "never runs"

    stuck()


@dag(dag_id="pending_evicted", **COMMON)
def pending_evicted():
    @task(retries=0)
    def evicted_first() -> str:
        return "ran in the second pod"

    evicted_first()


pending_unschedulable()
pending_evicted()
