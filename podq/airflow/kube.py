"""What the executor needs of Kubernetes: a task's ``pod_override`` as a dict, and pod logs.

* :func:`serialize_override` turns ``executor_config["pod_override"]`` (a ``k8s.V1Pod``) into
  the API's camelCase dict that a podq job carries, the way the client's
  ``sanitize_for_serialization`` does, by reading the model's own ``attribute_map`` (no import
  of ``kubernetes``: shared/kubeclient.py is podq's one adapter to it). No API call.
* :class:`PodLogs` reads a task's pod log for ``get_task_log``, only when the executor is
  configured with API access (``logs_from_kubernetes``); the scheduler never needs it.
"""
from __future__ import annotations

import datetime
import logging
from typing import Any

from podq.shared.kubeclient import ApiException, api_client, core_api
from podq.shared.naming import MAIN_CONTAINER, safe_label_value
from podq.shared.records import TaskKey
from podq.shared.settings import KubeSettings

from .config import ExecutorConfig
from .mapping import WorkloadError

log = logging.getLogger(__name__)
_EPOCH = datetime.datetime.fromtimestamp(0, datetime.timezone.utc)
_EVENTS_SHOWN = 10


def serialize_override(override: Any) -> dict[str, Any] | None:
    """``executor_config["pod_override"]`` as a plain dict (a dict is taken as already serialized)."""
    if override is None or isinstance(override, dict):
        return override
    if type(override).__name__ != "V1Pod" or not hasattr(override, "attribute_map"):
        raise WorkloadError(f"executor_config.pod_override: expected a k8s.V1Pod, got {type(override).__name__}")
    return _api_value(override)


def _api_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_api_value(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _api_value(item) for key, item in value.items()}
    fields = getattr(value, "openapi_types", None)
    if fields is None:
        raise WorkloadError(f"executor_config.pod_override holds a {type(value).__name__}, not an API model")
    return {value.attribute_map[name]: _api_value(getattr(value, name)) for name in fields
            if getattr(value, name) is not None}


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
            settings = KubeSettings(kubeconfig=self.config.kube_config_file, in_cluster=self.config.kube_in_cluster)
            self._api = core_api(api_client(settings, pool_size=1))
        return self._api

    def read(self, key: TaskKey, *, namespace: str) -> tuple[list[str], list[str]]:
        """(log lines, messages) as ``get_task_log`` returns them; never raises.

        The newest of the try's pods is read (a launch after a launch failure is a pod of its own).
        While it is Pending there is no log yet: the messages say why it waits instead, from its
        status and its last Kubernetes Events (the "why is my task queued" an Airflow user asks).
        """
        selector = selector_for(key)
        try:
            api = self._core()
            pods = api.list_namespaced_pod(namespace, label_selector=selector).items
            if not pods:
                return [], [f"podq: no pod in namespace {namespace} matches {selector}"]
            pod = max(pods, key=lambda item: (item.metadata.creation_timestamp or _EPOCH, item.metadata.name))
            if (pod.status.phase if pod.status else None) == "Pending":
                return [], self._waiting(api, pod, namespace=namespace)
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

    def _waiting(self, api, pod, *, namespace: str) -> list[str]:
        """Why a Pending pod waits: its unscheduled condition or waiting containers, then its last Events."""
        name = pod.metadata.name
        lines = [f"podq: pod {namespace}/{name} is Pending; the task has not started"]
        for condition in (pod.status.conditions or []) if pod.status else []:
            if condition.type == "PodScheduled" and condition.status == "False":
                lines.append(f"podq: not scheduled: {condition.reason}: {condition.message or ''}".rstrip(": "))
        statuses = ((pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
                    if pod.status else [])
        for status in statuses:
            waiting = status.state.waiting if status.state else None
            if waiting is not None and waiting.reason:
                lines.append(f"podq: container {status.name} waiting: {waiting.reason}"
                             + (f": {waiting.message}" if waiting.message else ""))
        events = api.list_namespaced_event(namespace, field_selector=f"involvedObject.kind=Pod,"
                                                                     f"involvedObject.name={name}").items
        events.sort(key=lambda event: (event.last_timestamp or event.event_time or _EPOCH))
        for event in events[-_EVENTS_SHOWN:]:
            times = f" (x{event.count})" if event.count and event.count > 1 else ""
            lines.append(f"podq: event {event.type} {event.reason}: {event.message}{times}")
        return lines
