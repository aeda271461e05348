"""Building the pod for a job: template, then override, then podq's identity, then the hook.

The order (docs/pods.md):

1. the job's named template, or the default one (its own name and namespace, placeholders, dropped);
2. the configured image, if any, on the ``base`` container;
3. the job's ``pod_override``, merged with Kubernetes semantics (:mod:`.merge`); a
   request the override left alone is lowered to a limit the override set below it
   (the API server refuses a request above its limit);
4. podq's part, which nothing above can undo: the deterministic name, the namespace,
   Airflow-compatible labels and annotations, ``restartPolicy: Never``, the job's
   command as the ``base`` container's ``args``, ``AIRFLOW_IS_K8S_EXECUTOR_POD=True``;
5. the pod mutation hook, if configured; it may change anything but the pod's
   name, namespace and podq's identity keys, which are put back after it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from podq.shared import naming
from podq.shared.quantity import parse_quantity
from podq.shared.records import KubernetesJob

from .errors import MutationHookError, PodBuildError
from .merge import merge, merge_list

log = logging.getLogger(__name__)

MutationHook = Callable[[dict[str, Any]], "dict[str, Any] | None"]
EXECUTOR_ENV = {"name": "AIRFLOW_IS_K8S_EXECUTOR_POD", "value": "True"}


def build_pod(job: KubernetesJob, *, template: dict[str, Any], namespace: str, owner: str | None = None,
              image: str | None = None, hook: MutationHook | None = None, launch: int = 1) -> dict[str, Any]:
    """The pod to create for ``job`` (its ``launch``: a later one after a pod failed before it
    started has a name of its own); ``template`` is a private copy and is consumed.

    ``owner`` is the scheduler that owns the job now (the ledger's, after an
    adoption); it names the pod's ``airflow-worker`` label and scheduler-id annotation.
    """
    owner = owner or job.scheduler_id
    pod = template
    # A template's own name and namespace are placeholders (the cncf-kubernetes provider's templates say
    # `name: placeholder-name`): replaced without a word, as the KubernetesExecutor replaces them. A
    # job's override or the hook that sets them is told (below) that podq's win.
    metadata = pod.get("metadata")
    if isinstance(metadata, dict):
        for field in ("name", "generateName", "namespace"):
            metadata.pop(field, None)
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    spec = pod.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    _name_main_container(containers)
    if image:
        containers[0]["image"] = image
    if job.pod_override:
        override = _override_with_named_base(job.pod_override)
        pod = merge(pod, override)
        _keep_requests_within_limits(pod, override)
    _apply_identity(pod, job, namespace=namespace, owner=owner, launch=launch)
    if hook is not None:
        pod = _run_hook(hook, pod, job)
        _restore_identity(pod, job, namespace=namespace, owner=owner, launch=launch)
    return pod


def _name_main_container(containers: list) -> None:
    """The template's first container is ``base`` unless one is already called that."""
    if not containers or not isinstance(containers[0], dict):
        raise PodBuildError("the pod has no containers")
    if not any(isinstance(c, dict) and c.get("name") == naming.MAIN_CONTAINER for c in containers):
        containers[0]["name"] = naming.MAIN_CONTAINER


def _override_with_named_base(override: dict[str, Any]) -> dict[str, Any]:
    """An override whose first container has no name means the ``base`` container."""
    spec = override.get("spec")
    if not isinstance(spec, dict):
        return override
    containers = spec.get("containers")
    if isinstance(containers, list) and containers and isinstance(containers[0], dict) \
            and not containers[0].get("name"):
        containers = [{**containers[0], "name": naming.MAIN_CONTAINER}, *containers[1:]]
        return {**override, "spec": {**spec, "containers": containers}}
    return override


def _keep_requests_within_limits(pod: dict[str, Any], override: dict[str, Any]) -> None:
    """Lower each request the override did not set to the container's limit, where it is above it.

    The template's default requests (say ``memory: 256Mi``) must not outgrow an override's
    lower limit (``memory: 128Mi``): the API server would refuse the pod. A request the
    override sets itself is left as given.
    """
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    for field in ("initContainers", "containers"):
        set_by_override = _requests_by_container(override, field)
        for container in _dicts(spec.get(field)):
            resources = container.get("resources")
            if not isinstance(resources, dict):
                continue
            requests, limits = resources.get("requests"), resources.get("limits")
            if not isinstance(requests, dict) or not isinstance(limits, dict):
                continue
            own = set_by_override.get(container.get("name"), set())
            for resource, limit in limits.items():
                if resource in own or resource not in requests:
                    continue
                request_amount, limit_amount = parse_quantity(requests[resource]), parse_quantity(limit)
                if request_amount is not None and limit_amount is not None and request_amount > limit_amount:
                    requests[resource] = limit


def _requests_by_container(override: dict[str, Any], field: str) -> dict[str, set[str]]:
    spec = override.get("spec")
    containers = spec.get(field) if isinstance(spec, dict) else None
    named: dict[str, set[str]] = {}
    for container in _dicts(containers):
        resources = container.get("resources")
        requests = resources.get("requests") if isinstance(resources, dict) else None
        named[container.get("name")] = set(requests) if isinstance(requests, dict) else set()
    return named


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _main_container(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list):
        raise PodBuildError("pod.spec.containers must be a list")
    for container in containers:
        if isinstance(container, dict) and container.get("name") == naming.MAIN_CONTAINER:
            return container
    raise PodBuildError(f"the pod has no container named {naming.MAIN_CONTAINER!r}")


def _apply_identity(pod: dict[str, Any], job: KubernetesJob, *, namespace: str, owner: str, launch: int) -> None:
    if not isinstance(pod.get("metadata", {}), dict) or not isinstance(pod.get("spec"), dict):
        raise PodBuildError("pod.metadata and pod.spec must be maps")
    _restore_identity(pod, job, namespace=namespace, owner=owner, launch=launch)
    pod["spec"]["restartPolicy"] = "Never"
    base = _main_container(pod)
    if job.command:
        base["args"] = list(job.command)
    env = base.get("env") or []
    if not isinstance(env, list):
        raise PodBuildError("the base container's env must be a list")
    base["env"] = merge_list(env, [dict(EXECUTOR_ENV)], key="name", path="pod.spec.containers[base].env")


def _restore_identity(pod: dict[str, Any], job: KubernetesJob, *, namespace: str, owner: str, launch: int) -> None:
    """Set the name, namespace, labels and annotations podq relies on (after the hook too)."""
    metadata = pod.setdefault("metadata", {})
    name = naming.pod_name_for(job.job_id, job.key, launch=launch)
    if metadata.get("name", name) != name or metadata.get("namespace", namespace) != namespace:
        log.warning("job %s: pod name/namespace set by the pod override or the mutation hook ignored", job.job_id)
    metadata.pop("generateName", None)
    metadata["name"] = name
    metadata["namespace"] = namespace
    labels = _string_map(metadata, "labels")
    labels.update(naming.pod_labels(job_id=job.job_id, scheduler_id=owner, key=job.key))
    annotations = _string_map(metadata, "annotations")
    annotations.pop(naming.LAUNCH_ID_KEY, None)  # only the job's own key names a launch
    annotations.update(naming.pod_annotations(job_id=job.job_id, scheduler_id=owner, key=job.key))
    if launch > 1:
        annotations[naming.LAUNCH_KEY] = str(launch)
    else:
        annotations.pop(naming.LAUNCH_KEY, None)


def _string_map(metadata: dict[str, Any], field: str) -> dict[str, str]:
    value = metadata.get(field)
    if value is None:
        value = metadata[field] = {}
    if not isinstance(value, dict):
        raise PodBuildError(f"pod.metadata.{field} must be a map")
    return value


def _run_hook(hook: MutationHook, pod: dict[str, Any], job: KubernetesJob) -> dict[str, Any]:
    try:
        returned = hook(pod)
    except Exception as exc:  # noqa: BLE001 - any hook failure becomes the job's failed result
        raise MutationHookError(f"pod mutation hook raised {type(exc).__name__}: {exc}") from exc
    result = pod if returned is None else returned
    if not isinstance(result, dict):
        raise MutationHookError(f"pod mutation hook returned {type(result).__name__}, expected a dict or None")
    if not isinstance(result.get("spec"), dict):
        raise MutationHookError("pod mutation hook left the pod without a spec")
    log.debug("job %s: mutation hook applied", job.job_id)
    return result
