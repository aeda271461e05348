"""Airflow ``ExecuteTask`` workloads and task-instance stand-ins for executor tests (no metadata DB)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from airflow.executors.workloads import ExecuteTask
from airflow.executors.workloads.base import BundleInfo
from airflow.executors.workloads.task import TaskInstanceDTO
from airflow.models.taskinstancekey import TaskInstanceKey


def workload(task_id: str, *, dag_id: str = "podq_tests", run_id: str = "manual__1", try_number: int = 1,
             map_index: int = -1, queue: str = "default", executor_config: dict | None = None,
             priority_weight: int = 1, ti_id: uuid.UUID | None = None,
             external_executor_id: str | None = None) -> ExecuteTask:
    """A workload; ``external_executor_id`` is the launch id Airflow's scheduler pre-assigns."""
    ti = TaskInstanceDTO(id=ti_id or uuid.uuid4(), dag_id=dag_id, task_id=task_id, run_id=run_id,
                         try_number=try_number, map_index=map_index, dag_version_id=uuid.uuid4(), queue=queue,
                         pool_slots=1, priority_weight=priority_weight, executor_config=executor_config,
                         external_executor_id=external_executor_id)
    return ExecuteTask(ti=ti, token="token", dag_rel_path="dags/podq_tests.py",
                       bundle_info=BundleInfo(name="dags-folder", version=None),
                       log_path=f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt={try_number}.log")


def outcome(**annotations: str) -> dict[str, Any]:
    """An executor_config whose pod_override sets kubesim's simulated outcome annotations."""
    return {"pod_override": {"metadata": {"annotations": {f"kubesim.podq.io/{k.replace('_', '-')}": v
                                                          for k, v in annotations.items()}}}}


@dataclass
class FakeTI:
    """What ``revoke_task`` and ``try_adopt_task_instances`` read of a TaskInstance."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    map_index: int
    queue: str = "default"
    external_executor_id: str | None = None
    queued_by_job_id: int | None = None
    id: str | None = None

    @property
    def key(self) -> TaskInstanceKey:
        return TaskInstanceKey(self.dag_id, self.task_id, self.run_id, self.try_number, self.map_index)

    @classmethod
    def of(cls, work: ExecuteTask, **fields: Any) -> "FakeTI":
        ti = work.ti
        return cls(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, try_number=ti.try_number,
                   map_index=ti.map_index, queue=ti.queue, **fields)
