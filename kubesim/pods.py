"""What the apiserver does to a Pod body on create and update: validation, defaults, generated names."""

from __future__ import annotations

import copy
import random
import re
import uuid
from typing import Any

from podq.shared.quantity import parse_quantity

from .clock import rfc3339
from .errors import ApiError, bad_request, invalid
from .selectors import label_key_problem, label_value_problem

JsonDict = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_HELP = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_NOT_READY_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
)
# Spec fields a pod update may change (pod strategy ValidatePodUpdate); everything else is immutable.
_MUTABLE_CONTAINER_FIELDS = ("image",)
_MUTABLE_SPEC_FIELDS = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def _cause(field: str, message: str, *, reason: str = "FieldValueInvalid") -> JsonDict:
    return {"reason": reason, "message": message, "field": field}


def _required(field: str) -> JsonDict:
    return _cause(field, "Required value", reason="FieldValueRequired")


def generate_name(base: str) -> str:
    """``base[:58]`` plus five random characters from the apiserver's alphabet."""
    return base[:58] + "".join(random.choices(_NAME_ALPHABET, k=5))


def name_problem(name: str) -> str | None:
    if len(name) > 253:
        return "must be no more than 253 characters"
    if not _SUBDOMAIN.match(name):
        return _SUBDOMAIN_HELP
    return None


def check_string_map(meta: JsonDict, field: str) -> None:
    value = meta.get(field)
    if value is None:
        return
    if not isinstance(value, dict):
        raise bad_request(f"json: cannot unmarshal into Go struct field ObjectMeta.metadata.{field} of type map[string]string")
    for key, item in value.items():
        if not isinstance(item, str):
            raise bad_request(
                f"json: cannot unmarshal {type(item).__name__} into Go struct field ObjectMeta.metadata.{field} of type string"
            )


def metadata_causes(meta: JsonDict) -> list[JsonDict]:
    causes: list[JsonDict] = []
    for key, value in (meta.get("labels") or {}).items():
        problem = label_key_problem(key)
        if problem:
            causes.append(_cause("metadata.labels", f'Invalid value: "{key}": {problem}'))
        problem = label_value_problem(value)
        if problem:
            causes.append(_cause("metadata.labels", f'Invalid value: "{value}": {problem}'))
    for key in meta.get("annotations") or {}:
        problem = label_key_problem(key.lower())
        if problem:
            causes.append(_cause("metadata.annotations", f'Invalid value: "{key}": {problem}'))
    return causes


def _container_causes(spec: JsonDict) -> list[JsonDict]:
    causes: list[JsonDict] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [_required("spec.containers")]
    seen: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(field) or []):
            where = f"spec.{field}[{i}]"
            if not isinstance(container, dict):
                causes.append(_cause(where, "Invalid value: must be an object"))
                continue
            name = container.get("name")
            if not name:
                causes.append(_required(f"{where}.name"))
            elif not isinstance(name, str) or len(name) > 63 or not _LABEL.match(name):
                causes.append(_cause(f"{where}.name", f'Invalid value: "{name}": {_LABEL_HELP}'))
            elif name in seen:
                causes.append(_cause(f"{where}.name", f'Duplicate value: "{name}"', reason="FieldValueDuplicate"))
            else:
                seen.add(name)
            if not container.get("image"):
                causes.append(_required(f"{where}.image"))
            causes += _resource_causes(container.get("resources"), f"{where}.resources")
    return causes


def _overcommit_allowed(resource: str) -> bool:
    """Native resources other than hugepages may be requested below their limit (helper.IsOvercommitAllowed)."""
    native = "/" not in resource or "kubernetes.io/" in resource
    return native and not resource.startswith("hugepages-")


def _resource_causes(resources: Any, where: str) -> list[JsonDict]:
    """ValidateResourceRequirements: a request above its limit (or, where overcommit is not allowed, unequal)."""
    if not isinstance(resources, dict):
        return []
    requests, limits = resources.get("requests"), resources.get("limits")
    if not isinstance(requests, dict) or not isinstance(limits, dict):
        return []
    causes = []
    for resource, request in requests.items():
        if resource not in limits:
            continue
        amount, limit = parse_quantity(request), parse_quantity(limits[resource])
        if amount is None or limit is None:
            continue
        if amount != limit and not _overcommit_allowed(resource):
            problem = f"must be equal to {resource} limit of {limits[resource]}"
        elif amount > limit:
            problem = f"must be less than or equal to {resource} limit of {limits[resource]}"
        else:
            continue
        causes.append(_cause(f"{where}.requests", f'Invalid value: "{request}": {problem}'))
    return causes


def validate_create(pod: JsonDict, *, url_namespace: str) -> None:
    """Raise 400/422 for a pod body the apiserver would refuse (the name is already resolved)."""
    meta = pod.get("metadata")
    if not isinstance(meta, dict):
        raise invalid("", [_cause("metadata.name", "name or generateName is required", reason="FieldValueRequired")])
    if meta.get("namespace") and meta["namespace"] != url_namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    check_string_map(meta, "labels")
    check_string_map(meta, "annotations")
    name = meta.get("name") or ""
    causes: list[JsonDict] = []
    if not name:
        causes.append(_cause("metadata.name", "Required value: name or generateName is required", reason="FieldValueRequired"))
    else:
        problem = name_problem(name)
        if problem:
            causes.append(_cause("metadata.name", f'Invalid value: "{name}": {problem}'))
    causes += metadata_causes(meta)
    spec = pod.get("spec")
    causes += _container_causes(spec if isinstance(spec, dict) else {})
    if causes:
        raise invalid(name, causes)


def qos_class(spec: JsonDict) -> str:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        if limits or requests:
            any_set = True
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _default_container(container: JsonDict) -> None:
    resources = container.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        # A limit without a request gives the request (SetDefaults_Pod).
        requests = resources.setdefault("requests", {})
        if isinstance(requests, dict):
            for resource, limit in resources["limits"].items():
                requests.setdefault(resource, limit)
    image = str(container.get("image", ""))
    tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    container.setdefault("imagePullPolicy", "Always" if tagless or image.endswith(":latest") else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})


def apply_defaults(pod: JsonDict) -> None:
    """Fill in the spec defaults a real apiserver (and its admission chain) sets."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    present = {t.get("key") for t in tolerations if isinstance(t, dict)}
    tolerations.extend(dict(t) for t in _NOT_READY_TOLERATIONS if t["key"] not in present)
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            _default_container(container)


def prepare_create(pod: JsonDict, *, namespace: str, rv: int, now: float) -> JsonDict:
    """Server-owned metadata and the initial status; returns the object to store."""
    meta = pod["metadata"]
    for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
        meta.pop(key, None)
    meta["namespace"] = namespace
    meta["uid"] = str(uuid.UUID(int=random.getrandbits(128), version=4))  # uuid4() reads urandom: slower
    meta["resourceVersion"] = str(rv)
    meta["generation"] = 1
    meta["creationTimestamp"] = rfc3339(now)
    apply_defaults(pod)
    pod["kind"] = "Pod"
    pod["apiVersion"] = "v1"
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod["spec"])}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": pod["spec"], "status": pod["status"]}


def _neutral_spec(spec: JsonDict) -> JsonDict:
    spec = copy.deepcopy(spec)
    for field in _MUTABLE_SPEC_FIELDS:
        spec.pop(field, None)
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            for key in _MUTABLE_CONTAINER_FIELDS:
                container.pop(key, None)
    return spec


def validate_spec_update(name: str, *, old_spec: JsonDict, new_spec: JsonDict) -> None:
    """422 when an update touches an immutable part of the pod spec."""
    if old_spec == new_spec:
        return
    apply_defaults({"spec": new_spec})
    if _neutral_spec(old_spec) != _neutral_spec(new_spec):
        raise invalid(
            name,
            [
                _cause(
                    "spec",
                    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                    "(allow it to be set to 1 if it was previously negative)",
                    reason="FieldValueForbidden",
                )
            ],
        )
    causes = _container_causes(new_spec)
    if causes:
        raise invalid(name, causes)


def require_object(body: Any) -> JsonDict:
    if not isinstance(body, dict):
        raise bad_request("Object 'Kind' is missing in request body")
    kind = body.get("kind")
    if kind not in (None, "", "Pod"):
        raise bad_request(f"the API version in the data (v1) does not match the expected kind: {kind} is not Pod")
    return body


def raise_if_name_mismatch(body: JsonDict, url_name: str) -> None:
    name = (body.get("metadata") or {}).get("name")
    if name and name != url_name:
        raise bad_request(f"the name of the object ({name}) does not match the name on the URL ({url_name})")


__all__ = [
    "ApiError",
    "apply_defaults",
    "generate_name",
    "prepare_create",
    "qos_class",
    "raise_if_name_mismatch",
    "require_object",
    "validate_create",
    "validate_spec_update",
]
