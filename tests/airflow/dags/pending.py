"""The DAGs of the before-running proof (tests/airflow/test_real_airflow_pending.py).

``pending_unschedulable``: a task whose pod no node can take (kubesim's scheduler leaves it Pending with
its Unschedulable reason); ``pending_evicted``: a task whose first pod the test evicts before it starts;
``pending_broken_image``: a task whose container exits before the task runner starts.
"""
from __future__ import annotations

import datetime

from airflow.sdk import dag, task
from kubernetes.client import models as k8s

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
COMMON = {"schedule": None, "start_date": START, "catchup": False}

UNSCHEDULABLE = k8s.V1Pod(metadata=k8s.V1ObjectMeta(annotations={"kubesim.podq.io/outcome": "Unschedulable"}))
# The container's command replaced: it prints why it cannot start the task and exits before the task runner
# ever reports to Airflow (apache/airflow #29025: the log of a task that failed to launch).
CANNOT_START = "import sys; print('cannot start the task: dags_helpers is not installed', flush=True); sys.exit(3)"
BROKEN_IMAGE = k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base",
                                                                        command=["python", "-c", CANNOT_START])]))


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


@dag(dag_id="pending_broken_image", **COMMON)
def pending_broken_image():
    @task(retries=0, executor_config={"pod_override": BROKEN_IMAGE})
    def never_starts() -> str:
        return "never runs"

    never_starts()


pending_unschedulable()
pending_evicted()
pending_broken_image()
