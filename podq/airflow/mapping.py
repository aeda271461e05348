"""Airflow's task instances to podq jobs, and podq's results back to executor events: pure functions.

Nothing here imports Airflow or talks to Redis, so every rule is unit-tested on its own
(tests/unit/test_airflow_mapping.py); :mod:`podq.airflow.executor` applies them.
"""
from __future__ import annotations

import copy
from enum import Enum
from typing import Any, Mapping

from podq.shared.naming import MAIN_CONTAINER, derive_job_id
from podq.shared.records import PRIORITY_RANGE, FailureDetails, KubernetesJob, KubernetesResults, TaskKey
from podq.shared.states import State

from .config import ExecutorConfig, ExecutorConfigError, template_name

# The pod command Airflow 3's KubernetesExecutor gives its pods
# (cncf-kubernetes pod_generator.workload_to_command_args): the task runner reads the workload JSON.
WORKLOAD_MODULE = "airflow.sdk.execution_time.execute_workload"
TASK_INSTANCE_ID_ANNOTATION = "task_instance_id"
AIRFLOW_VERSION_LABEL = "airflow_version"


class WorkloadError(ExecutorConfigError):
    """A task's ``executor_config`` that cannot become a podq job; the task fails with this message."""


class Event(str, Enum):
    """What a podq result becomes in the executor."""

    NOTHING = "nothing"        # pending: the pod exists, Airflow has nothing to learn
    RUNNING = "running"        # running_state(): the TI's external_executor_id is the job id
    SUCCESS = "success"        # success()
    FAILED = "failed"          # fail() with podq's failure details as the event's info
    FREED = "freed"            # adopted by another scheduler: the slot is freed, no event
    REVOKED = "revoked"        # revoked: no event when this executor asked for it, else fail()


EVENTS: Mapping[State, Event] = {
    State.PENDING: Event.NOTHING,
    State.RUNNING: Event.RUNNING,
    State.SUCCEEDED: Event.SUCCESS,
    State.FAILED: Event.FAILED,
    State.LOST: Event.FAILED,
    State.REVOKED: Event.REVOKED,
    State.ADOPTED: Event.FREED,
}


def pod_command(workload_json: str) -> list[str]:
    """The ``base`` container's args for a workload, as the KubernetesExecutor builds them."""
    return ["python", "-m", WORKLOAD_MODULE, "--json-string", workload_json]


def scheduler_id(prefix: str, job_id: int | str | None) -> str:
    """podq's scheduler id for an Airflow scheduler job: also the pods' ``airflow-worker`` label."""
    if job_id is None or str(job_id) == "":
        raise ExecutorConfigError("the executor has no scheduler job id (it runs only inside a scheduler)")
    return f"{prefix}{job_id}"


def task_key(*, dag_id: str, task_id: str, run_id: str, try_number: int, map_index: int,
             launch_id: str | None = None) -> TaskKey:
    """podq's task key for one launch of Airflow's TaskInstanceKey (map index and try number included)."""
    return TaskKey(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=int(try_number),
                   map_index=int(map_index), launch_id=launch_id)


def job_id_for(scheduler: str, key: TaskKey) -> str:
    return derive_job_id(scheduler, key)


def template_for(executor_config: Mapping[str, Any] | None, default: str | None) -> str | None:
    """The podq template: a task's ``pod_template_file`` wins over the queue's and the executor's."""
    path = (executor_config or {}).get("pod_template_file")
    if path in (None, ""):
        return default
    if not isinstance(path, str):
        raise WorkloadError(f"executor_config.pod_template_file: expected a path, got {type(path).__name__}")
    return template_name(path, option="executor_config.pod_template_file")


def cluster_for(executor_config: Mapping[str, Any] | None, default: str | None) -> str | None:
    """The podq cluster: a task's ``executor_config={"cluster": ...}`` wins over its queue's and the executor's."""
    name = (executor_config or {}).get("cluster")
    if name in (None, ""):
        return default
    if not isinstance(name, str):
        raise WorkloadError(f"executor_config.cluster: expected a cluster name, got {type(name).__name__}")
    return name


def check_executor_config(executor_config: Any) -> None:
    """Refuse what Airflow's ``PodGenerator.from_obj`` refuses, with the same meaning."""
    if executor_config in (None, {}):
        return
    if not isinstance(executor_config, Mapping):
        raise WorkloadError(f"executor_config: expected a dict, got {type(executor_config).__name__}")
    if "KubernetesExecutor" in executor_config:
        raise WorkloadError('executor_config: the legacy {"KubernetesExecutor": {...}} form is not supported; '
                            'use {"pod_override": k8s.V1Pod(...)}')


def pod_override(override: Mapping[str, Any] | None, *, image: str | None, airflow_version: str | None,
                 ti_id: str | None) -> dict[str, Any] | None:
    """The job's ``pod_override``: Airflow's executor-made parts below the task's own override.

    ``override`` is the task's ``pod_override`` already in the API's camelCase shape. The
    configured image and the ``airflow_version`` label / ``task_instance_id`` annotation the
    KubernetesExecutor puts on its pods come first; the task's override wins over them.
    """
    made: dict[str, Any] = {}
    labels = {AIRFLOW_VERSION_LABEL: airflow_version.replace("+", "-")} if airflow_version else {}
    annotations = {TASK_INSTANCE_ID_ANNOTATION: ti_id} if ti_id else {}
    if labels or annotations:
        made["metadata"] = {key: value for key, value in (("labels", labels), ("annotations", annotations))
                            if value}
    if image:
        made["spec"] = {"containers": [{"name": MAIN_CONTAINER, "image": image}]}
    if not override:
        return made or None
    if not isinstance(override, Mapping):
        raise WorkloadError(f"executor_config.pod_override: expected a k8s.V1Pod, got {type(override).__name__}")
    return _overlay(made, copy.deepcopy(dict(override)))


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Maps merged key by key; ``top`` wins. The containers list is merged by name (``base`` first)."""
    merged = dict(base)
    for name, value in top.items():
        if name == "containers" and isinstance(value, list) and isinstance(merged.get(name), list):
            merged[name] = _containers(merged[name], value)
        elif isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _overlay(merged[name], value)
        else:
            merged[name] = value
    return merged


def _containers(base: list, top: list) -> list:
    named = [dict(item) for item in top]
    if named and isinstance(named[0], dict) and not named[0].get("name"):
        named[0]["name"] = MAIN_CONTAINER
    by_name = {item.get("name"): item for item in named if isinstance(item, dict)}
    result = [_overlay(item, by_name.pop(item.get("name"))) if item.get("name") in by_name else item
              for item in base]
    return result + [item for item in named if not isinstance(item, dict) or item.get("name") in by_name]


def build_job(*, scheduler: str, key: TaskKey, workload_json: str, config: ExecutorConfig,
              queue: str | None, executor_config: Mapping[str, Any] | None,
              override: Mapping[str, Any] | None, airflow_version: str | None,
              ti_id: str | None, priority_weight: int | None = None) -> KubernetesJob:
    """The podq job for one ``ExecuteTask`` workload; ``priority_weight`` becomes its priority."""
    check_executor_config(executor_config)
    route = config.route(queue)
    return KubernetesJob.new(
        scheduler_id=scheduler, key=key, command=pod_command(workload_json),
        namespace=route.namespace, pod_template=template_for(executor_config, route.pod_template),
        cluster=cluster_for(executor_config, route.cluster),
        pod_override=pod_override(override, image=config.image, airflow_version=airflow_version, ti_id=ti_id),
        priority=job_priority(priority_weight))


def job_priority(priority_weight: int | None) -> int:
    """A task's ``priority_weight`` as a job's priority: the same integer, held to the 32 bits the
    wire allows (Airflow clamps it so already)."""
    low, high = PRIORITY_RANGE
    return max(low, min(high, int(priority_weight or 0)))


def describe(result: KubernetesResults) -> str:
    """One line an Airflow user reads in the event log: what podq saw happen to the pod."""
    where = f"pod {result.namespace}/{result.pod_name}" if result.pod_name else "no pod"
    if result.cluster and result.pod_name:
        where = f"{where} in cluster {result.cluster}"
    head = f"podq job {result.job_id} ({where}) {result.state.value}"
    why = result.pending_reason
    if why is not None:
        return f"{head}: {why.reason}" + (f": {why.message}" if why.message else "")
    details = result.failure_details
    if details is None:
        return head
    return f"{head}: {failure_text(details)}"


def failure_lines(result: KubernetesResults) -> list[str]:
    """What a task's log says of a launch that ended before the task started: :func:`describe`'s line,
    then each of the pod's last Events and the last lines of its container's log on a line of its own."""
    lines = [describe(result)]
    details = result.failure_details
    if details is not None and details.events:
        lines.append("the pod's last Kubernetes Events:")
        lines.extend(f"  {event}" for event in details.events)
    if details is not None and details.log_tail:
        lines.append(f"the last {len(details.log_tail)} line(s) of container "
                     f"{details.container_name or MAIN_CONTAINER}'s log:")
        lines.extend(f"  {line}" for line in details.log_tail)
    return lines


def failure_text(details: FailureDetails) -> str:
    parts = []
    if details.reason or details.message:
        parts.append(": ".join(part for part in (details.reason, details.message) if part))
    if details.container_state or details.container_reason or details.exit_code is not None:
        container = f"{details.container_type or 'main'} container {details.container_name or MAIN_CONTAINER}"
        state = " ".join(part for part in (details.container_state, details.container_reason) if part)
        exit_code = f", exit code {details.exit_code}" if details.exit_code is not None else ""
        message = f": {details.container_message}" if details.container_message else ""
        parts.append(f"{container} {state or 'failed'}{exit_code}{message}")
    if details.pod_status or details.pod_reason or details.pod_message:
        pod = " ".join(part for part in (details.pod_status, details.pod_reason) if part)
        parts.append(f"pod {pod}" + (f": {details.pod_message}" if details.pod_message else ""))
    if details.events:
        parts.append("last events: " + " | ".join(details.events))
    if details.log_tail:
        parts.append("last log lines: " + " | ".join(details.log_tail))
    return "; ".join(parts) or "no details"
