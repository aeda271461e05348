"""The executor's only contact with the ``kubernetes`` package (an adapter module).

* :func:`serialize_override` turns a task's ``pod_override`` (a ``k8s.V1Pod``) into the API's
  camelCase dict that a podq job carries; no API call.
* :class:`PodLogs` reads a task's pod log for ``get_task_log``, only when the executor is
  configured with API access (``logs_from_kubernetes``); the scheduler never needs it.
"""
from __future__ import annotations

import logging
from typing import Any

from podq.shared.naming import MAIN_CONTAINER, safe_label_value
from podq.shared.records import TaskKey

from .config import ExecutorConfig
from .mapping import WorkloadError

log = logging.getLogger(__name__)


def serialize_override(override: Any) -> dict[str, Any] | None:
    """``executor_config["pod_override"]`` as a plain dict (a dict is taken as already serialized)."""
    if override is None:
        return None
    if isinstance(override, dict):
        return override
    from kubernetes.client import ApiClient, V1Pod

    if not isinstance(override, V1Pod):
        raise WorkloadError(f"executor_config.pod_override: expected a k8s.V1Pod, got {type(override).__name__}")
    return ApiClient().sanitize_for_serialization(override)


def selector_for(key: TaskKey) -> str:
    """The label selector of a task try's pod (the labels Airflow's executor and podq both set)."""
    parts = [f"dag_id={safe_label_value(key.dag_id)}", f"task_id={safe_label_value(key.task_id)}",
             f"run_id={safe_label_value(key.run_id)}", f"try_number={key.try_number}",
             "kubernetes_executor=True"]
    if key.map_index >= 0:
        parts.append(f"map_index={key.map_index}")
    return ",".join(parts)


class PodLogs:
    """Reads the ``base`` container's log of a task's pod through the Kubernetes API."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self._api = None

    def _core(self):
        if self._api is None:
            from kubernetes import client, config as kube_config

            if self.config.kube_in_cluster:
                kube_config.load_incluster_config()
            else:
                kube_config.load_kube_config(config_file=self.config.kube_config_file)
            self._api = client.CoreV1Api()
        return self._api

    def read(self, key: TaskKey, *, namespace: str) -> tuple[list[str], list[str]]:
        """(log lines, messages) as ``get_task_log`` returns them; never raises."""
        from kubernetes.client.rest import ApiException

        selector = selector_for(key)
        try:
            api = self._core()
            pods = api.list_namespaced_pod(namespace, label_selector=selector).items
            if not pods:
                return [], [f"podq: no pod in namespace {namespace} matches {selector}"]
            pod = pods[0]
            text = api.read_namespaced_pod_log(name=pod.metadata.name, namespace=namespace,
                                               container=MAIN_CONTAINER,
                                               tail_lines=self.config.running_pod_log_lines)
        except ApiException as exc:
            return [], [f"podq: reading the pod log in {namespace} ({selector}) failed: "
                        f"HTTP {exc.status} {exc.reason}"]
        except Exception as exc:  # noqa: BLE001 - a log view must not take the API server down
            log.warning("reading the pod log of %s failed: %s", key, exc)
            return [], [f"podq: reading the pod log of {key} failed: {type(exc).__name__}: {exc}"]
        return [text], [f"podq: last {self.config.running_pod_log_lines} lines of pod "
                        f"{namespace}/{pod.metadata.name}, container {MAIN_CONTAINER}"]
