"""The pod policy intake enforces on what producers send: shape first, then safety.

``pod_override`` must be a map shaped like a Pod (``metadata`` with labels and
annotations only, ``spec`` with PodSpec fields), and the default policy refuses
what would give a job the node: privileged containers, privilege escalation,
hostPath volumes and the host's network, PID or IPC namespace. Every check
returns a reason naming the field path and the rule, never quoting file content.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

MAX_DEPTH = 32

POD_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec"})
METADATA_KEYS = frozenset({"labels", "annotations"})
# Every field of a v1 PodSpec (Kubernetes 1.33).
SPEC_KEYS = frozenset({
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers",
    "dnsConfig", "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases",
    "hostIPC", "hostNetwork", "hostPID", "hostUsers", "hostname", "imagePullSecrets",
    "initContainers", "nodeName", "nodeSelector", "os", "overhead", "preemptionPolicy",
    "priority", "priorityClassName", "readinessGates", "resourceClaims", "resources",
    "restartPolicy", "runtimeClassName", "schedulerName", "schedulingGates", "securityContext",
    "serviceAccount", "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace",
    "subdomain", "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints",
    "volumes",
})
LIST_FIELDS = frozenset({"containers", "initContainers", "ephemeralContainers", "volumes",
                         "tolerations", "imagePullSecrets", "hostAliases", "readinessGates",
                         "resourceClaims", "schedulingGates", "topologySpreadConstraints"})
MAP_FIELDS = frozenset({"affinity", "dnsConfig", "nodeSelector", "os", "overhead", "resources",
                        "securityContext"})
BOOL_FIELDS = frozenset({"automountServiceAccountToken", "enableServiceLinks", "hostIPC",
                         "hostNetwork", "hostPID", "hostUsers", "setHostnameAsFQDN",
                         "shareProcessNamespace"})
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, stopping early once past ``limit``."""
    if limit < 0:
        return 1
    if isinstance(value, Mapping):
        return 1 + max((_depth(item, limit - 1) for item in value.values()), default=0)
    if isinstance(value, (list, tuple)):
        return 1 + max((_depth(item, limit - 1) for item in value), default=0)
    return 0


def _string_map(value: Any, where: str) -> str | None:
    if not isinstance(value, Mapping):
        return f"{where}: must be a map of strings"
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            return f"{where}: keys and values must be strings"
    return None


def check_override_shape(override: Mapping[str, Any], where: str = "job.pod_override") -> str | None:
    """Why ``override`` is not a map of valid pod fields, or None."""
    if _depth(override, MAX_DEPTH) > MAX_DEPTH:
        return f"{where}: nested deeper than {MAX_DEPTH} levels"
    unknown = sorted(set(override) - POD_KEYS)
    if unknown:
        return f"{where}.{unknown[0]}: not a pod field (allowed: {', '.join(sorted(POD_KEYS))})"
    if override.get("apiVersion", "v1") != "v1":
        return f"{where}.apiVersion: must be 'v1'"
    if override.get("kind", "Pod") != "Pod":
        return f"{where}.kind: must be 'Pod'"
    metadata = override.get("metadata", {})
    if not isinstance(metadata, Mapping):
        return f"{where}.metadata: must be a map"
    unknown = sorted(set(metadata) - METADATA_KEYS)
    if unknown:
        return (f"{where}.metadata.{unknown[0]}: producers may set only labels and annotations "
                "(podq names the pod and takes the namespace from job.namespace)")
    for name in sorted(METADATA_KEYS & set(metadata)):
        if reason := _string_map(metadata[name], f"{where}.metadata.{name}"):
            return reason
    spec = override.get("spec", {})
    if not isinstance(spec, Mapping):
        return f"{where}.spec: must be a map"
    for name, value in spec.items():
        path = f"{where}.spec.{name}"
        if name not in SPEC_KEYS:
            return f"{path}: not a PodSpec field"
        if name in LIST_FIELDS and not (isinstance(value, list)
                                        and all(isinstance(item, Mapping) for item in value)):
            return f"{path}: must be an array of maps"
        if name in MAP_FIELDS and not isinstance(value, Mapping):
            return f"{path}: must be a map"
        if name in BOOL_FIELDS and not isinstance(value, bool):
            return f"{path}: must be a bool"
    for name in CONTAINER_LISTS:
        for index, container in enumerate(spec.get(name, ())):
            if not isinstance(container.get("name", ""), str):
                return f"{where}.spec.{name}[{index}].name: must be a string"
            context = container.get("securityContext", {})
            if not isinstance(context, Mapping):
                return f"{where}.spec.{name}[{index}].securityContext: must be a map"
    return None


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name in CONTAINER_LISTS:
        for index, container in enumerate(spec.get(name) or ()):
            if isinstance(container, Mapping):
                yield f"spec.{name}[{index}]", container


def check_pod_policy(pod: Mapping[str, Any], where: str = "job.pod_override") -> str | None:
    """Why ``pod`` breaks the default pod policy, or None. Expects a shape-checked pod."""
    spec = pod.get("spec") or {}
    if not isinstance(spec, Mapping):
        return None
    for name in HOST_NAMESPACES:
        if spec.get(name) is True:
            return f"{where}.spec.{name}: refused by pod policy (host namespaces)"
    for index, volume in enumerate(spec.get("volumes") or ()):
        if isinstance(volume, Mapping) and "hostPath" in volume:
            return f"{where}.spec.volumes[{index}].hostPath: refused by pod policy (hostPath volumes)"
    for path, container in _containers(spec):
        context = container.get("securityContext") or {}
        if not isinstance(context, Mapping):
            continue
        if context.get("privileged") is True:
            return f"{where}.{path}.securityContext.privileged: refused by pod policy (privileged containers)"
        if context.get("allowPrivilegeEscalation") is True:
            return (f"{where}.{path}.securityContext.allowPrivilegeEscalation: refused by pod policy "
                    "(privilege escalation)")
    return None


def check_override(override: Mapping[str, Any] | None, *, enforce_policy: bool = True) -> str | None:
    """Shape, then (unless disabled) the default pod policy, for a job's ``pod_override``."""
    if override is None:
        return None
    reason = check_override_shape(override)
    if reason is None and enforce_policy:
        reason = check_pod_policy(override)
    return reason
