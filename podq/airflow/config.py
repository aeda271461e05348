"""The executor's settings: the ``[podq_executor]`` section of Airflow's configuration, read once.

Airflow reads its configuration from ``airflow.cfg`` and ``AIRFLOW__PODQ_EXECUTOR__<OPTION>``
variables; :func:`load_config` turns that section into one frozen record, checked, so a bad value
stops the scheduler at start-up with the option's name instead of failing later per task.
This module does not import Airflow: it is given a ``get(option)`` function (docs/airflow.md).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Callable, Mapping

from podq.shared.errors import PodqError

SECTION = "podq_executor"
DEFAULT_CONSUMER = "airflow-executor"


class ExecutorConfigError(PodqError):
    """A ``[podq_executor]`` option that cannot be used; the message names it."""


@dataclass(frozen=True, kw_only=True)
class QueueRoute:
    """Where the tasks of one Airflow queue go."""

    namespace: str | None = None
    pod_template: str | None = None
    cluster: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExecutorConfig:
    """What the podq executor needs to know; one field per ``[podq_executor]`` option."""

    redis_url: str
    """Redis (or Valkey) of the podq cell: ``redis_url``, else ``PODQ_REDIS_URL``."""
    scheduler_id_prefix: str = ""
    """Put before Airflow's scheduler job id to make podq's scheduler id (several Airflows, one podq)."""
    consumer: str = DEFAULT_CONSUMER
    """Consumer name in the results group; stable, so a restarted consumer re-reads what it had not acked."""
    namespace: str | None = None
    """Namespace of the pods; unset: podq's workers' ``PODQ_KUBE_NAMESPACE``."""
    pod_template: str | None = None
    """podq template name (a file ``<name>.yaml`` in podq's templates directory) for every task."""
    image: str | None = None
    """Image of the ``base`` container (Airflow's ``worker_container_repository:tag``); a pod_override wins."""
    cluster: str | None = None
    """The podq cell's cluster for every task (a job's ``cluster``); unset: podq's routing rules decide."""
    queue_routes: Mapping[str, QueueRoute] = field(default_factory=dict)
    """Airflow queue -> namespace, template and/or cluster, from the JSON option ``queue_routes``."""
    results_batch: int = 1000
    """Most results read from Redis per call in ``sync()``."""
    max_results_per_sync: int = 10_000
    """Most results handled in one ``sync()`` (the scheduler loop must go on)."""
    logs_from_kubernetes: bool = False
    """``get_task_log`` reads the pod's log through the Kubernetes API (needs API access, below)."""
    kube_config_file: str | None = None
    """kubeconfig for reading pod logs; unset with ``kube_in_cluster`` false: the default kubeconfig."""
    kube_in_cluster: bool = False
    """Read pod logs with the in-cluster service account."""
    running_pod_log_lines: int = 100
    """Lines of a running pod's log that ``get_task_log`` returns (Airflow's option of the same name)."""
    queued_task_log: bool = True
    """Write why a queued task's pod waits, and what ended a launch that never ran, into the task try's
    log file (``[logging] base_log_folder``), where Airflow shows a queued task's log (.tasklog)."""
    stale_launch_check_interval: int = 5
    """Seconds between checks that Airflow still wants each launch not yet running (0: never check)."""

    def route(self, queue: str | None) -> QueueRoute:
        """The queue's route, falling back to the executor-wide namespace and template."""
        route = self.queue_routes.get(queue or "")
        return QueueRoute(namespace=(route.namespace if route else None) or self.namespace,
                          pod_template=(route.pod_template if route else None) or self.pod_template,
                          cluster=(route.cluster if route else None) or self.cluster)


def template_name(path_or_name: str, *, option: str) -> str:
    """A podq template name from Airflow's ``pod_template_file`` (its file name without suffix)."""
    name = PurePath(path_or_name).name
    for suffix in (".yaml", ".yml", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if not name:
        raise ExecutorConfigError(f"[{SECTION}] {option}: {path_or_name!r} names no template")
    return name


def load_config(get: Callable[[str], str | None], *, env: Mapping[str, str] | None = None) -> ExecutorConfig:
    """The executor's config from ``get(option)`` (Airflow's ``conf.get(SECTION, option, fallback=None)``)."""
    env = os.environ if env is None else env

    def text(option: str) -> str | None:
        value = get(option)
        return value.strip() or None if isinstance(value, str) else None

    def number(option: str, default: int, minimum: int = 1) -> int:
        raw = text(option)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ExecutorConfigError(f"[{SECTION}] {option}: expected a whole number, got {raw!r}") from None
        if value < minimum:
            raise ExecutorConfigError(f"[{SECTION}] {option}: must be at least {minimum}, got {value}")
        return value

    def flag(option: str, default: bool = False) -> bool:
        raw = (text(option) or str(default)).lower()
        if raw not in ("true", "false", "1", "0", "yes", "no"):
            raise ExecutorConfigError(f"[{SECTION}] {option}: expected true or false, got {raw!r}")
        return raw in ("true", "1", "yes")

    redis_url = text("redis_url") or env.get("PODQ_REDIS_URL")
    if not redis_url:
        raise ExecutorConfigError(f"[{SECTION}] redis_url is not set (nor PODQ_REDIS_URL): "
                                  "the executor needs the podq cell's Redis")
    template = text("pod_template")
    template_file = text("pod_template_file")
    if template and template_file:
        raise ExecutorConfigError(f"[{SECTION}] pod_template and pod_template_file: set one, not both")
    if template_file:
        template = template_name(template_file, option="pod_template_file")
    return ExecutorConfig(
        redis_url=redis_url,
        scheduler_id_prefix=text("scheduler_id_prefix") or "",
        consumer=text("consumer") or DEFAULT_CONSUMER,
        namespace=text("namespace"),
        cluster=text("cluster"),
        pod_template=template,
        image=text("image"),
        queue_routes=_queue_routes(text("queue_routes")),
        results_batch=number("results_batch", 1000),
        max_results_per_sync=number("max_results_per_sync", 10_000),
        logs_from_kubernetes=flag("logs_from_kubernetes"),
        kube_config_file=text("kube_config_file"),
        kube_in_cluster=flag("kube_in_cluster"),
        running_pod_log_lines=number("running_pod_log_lines", 100),
        queued_task_log=flag("queued_task_log", default=True),
        stale_launch_check_interval=number("stale_launch_check_interval", 5, minimum=0),
    )


def _queue_routes(raw: str | None) -> dict[str, QueueRoute]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ExecutorConfigError(f"[{SECTION}] queue_routes: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ExecutorConfigError(f"[{SECTION}] queue_routes: expected a JSON object of queue -> route")
    routes = {}
    for queue, route in value.items():
        where = f"[{SECTION}] queue_routes.{queue}"
        if not isinstance(route, dict):
            raise ExecutorConfigError(f"{where}: expected an object with namespace, pod_template and/or cluster")
        unknown = sorted(set(route) - {"namespace", "pod_template", "pod_template_file", "cluster"})
        if unknown:
            raise ExecutorConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                                      "(allowed: namespace, pod_template, pod_template_file, cluster)")
        for name, item in route.items():
            if not isinstance(item, str) or not item:
                raise ExecutorConfigError(f"{where}.{name}: expected a non-empty string")
        template = route.get("pod_template")
        if route.get("pod_template_file"):
            template = template_name(route["pod_template_file"], option=f"queue_routes.{queue}.pod_template_file")
        routes[queue] = QueueRoute(namespace=route.get("namespace"), pod_template=template,
                                   cluster=route.get("cluster"))
    return routes
