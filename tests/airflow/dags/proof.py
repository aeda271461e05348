"""The DAGs of the real-Airflow proof (tests/airflow/test_real_airflow.py): the same file for both executors.

Each DAG covers one behaviour the issue names; the expected end states are in the test, and
Airflow's own KubernetesExecutor run on the same kubesim is the reference for them.
"""
from __future__ import annotations

import datetime
import os
import time

from airflow.sdk import dag, get_current_context, task
from kubernetes.client import models as k8s

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
COMMON = {"schedule": None, "start_date": START, "catchup": False, "max_active_tasks": 64}
PARALLEL_TASKS = 20


def seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dag(dag_id="proof_parallel", **COMMON)
def proof_parallel():
    @task
    def work(index: int) -> int:
        time.sleep(seconds("PROOF_PARALLEL_SECONDS", 6))
        return index

    for index in range(PARALLEL_TASKS):
        work.override(task_id=f"work_{index:02d}")(index)


@dag(dag_id="proof_retry", **COMMON)
def proof_retry():
    @task(retries=1, retry_delay=datetime.timedelta(seconds=1))
    def flaky() -> str:
        try_number = get_current_context()["ti"].try_number
        if try_number < 2:
            raise RuntimeError(f"try {try_number} fails on purpose; try 2 succeeds")
        return "ok"

    flaky()


@dag(dag_id="proof_mapped", **COMMON)
def proof_mapped():
    @task
    def square(value: int) -> int:
        return value * value

    square.expand(value=[1, 2, 3])


OVERRIDE = k8s.V1Pod(
    metadata=k8s.V1ObjectMeta(labels={"proof": "override"}),
    spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base", env=[k8s.V1EnvVar(name="PROOF_OVERRIDE", value="yes")])]),
)


@dag(dag_id="proof_override", **COMMON)
def proof_override():
    @task(executor_config={"pod_override": OVERRIDE})
    def overridden() -> str:
        value = os.environ.get("PROOF_OVERRIDE")
        if value != "yes":
            raise RuntimeError(f"pod_override env PROOF_OVERRIDE is {value!r}, expected 'yes'")
        return value

    overridden()


@dag(dag_id="proof_timeout", **COMMON)
def proof_timeout():
    @task(execution_timeout=datetime.timedelta(seconds=3), retries=0)
    def too_slow() -> None:
        time.sleep(300)

    too_slow()


@dag(dag_id="proof_clear", **COMMON)
def proof_clear():
    # retry_delay: the KubernetesExecutor reports a cleared task's exit as "restarting", which Airflow
    # turns into up_for_retry (podq reports success: Airflow reruns at once); keep the rerun prompt for both.
    @task(retries=0, retry_delay=datetime.timedelta(seconds=1))
    def long_then_short() -> int:
        try_number = get_current_context()["ti"].try_number
        # The first try runs until the test clears it; the rerun after the clear is short.
        time.sleep(300 if try_number < 2 else 1)
        return try_number

    long_then_short()


@dag(dag_id="proof_deleted", **COMMON)
def proof_deleted():
    @task(retries=0)
    def victim() -> None:
        time.sleep(300)  # the test deletes this task's pod from outside while it runs

    victim()


@dag(dag_id="proof_adopt", **COMMON)
def proof_adopt():
    @task
    def survivor(index: int) -> int:
        time.sleep(seconds("PROOF_ADOPT_SECONDS", 40))
        return index

    for index in range(6):
        survivor.override(task_id=f"survivor_{index}")(index)


proof_parallel()
proof_retry()
proof_mapped()
proof_override()
proof_timeout()
proof_clear()
proof_deleted()
proof_adopt()
