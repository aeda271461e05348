"""Merging pod dicts the way Kubernetes' strategic merge merges a Pod.

``merge(base, override)`` returns a new dict; neither input is changed.

* maps merge key by key, recursively; a ``None`` value in the override removes the key;
* lists with a merge key (containers by ``name``, ports by ``containerPort``, …; the
  table below is the Pod's own) merge item by item: an override item whose key matches
  a base item is merged into it, others are appended, base order is kept;
* every other list (``command``, ``args``, ``tolerations``, ``envFrom``, …) and every
  scalar is replaced by the override's value.

docs/pods.md gives the rules with examples.
"""
from __future__ import annotations

from typing import Any

from .errors import PodBuildError

# The Pod API's patchMergeKey for each list field that has one.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "readinessGates": "conditionType",
    "topologySpreadConstraints": "topologyKey",
}


def merge(base: Any, override: Any, *, path: str = "pod") -> Any:
    """``override`` merged onto ``base`` (see the module docstring)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if not isinstance(key, str):
                raise PodBuildError(f"{path}: keys must be strings, got {type(key).__name__}")
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge_field(key, merged[key], value, path=f"{path}.{key}")
            else:
                merged[key] = value
        return merged
    return override


def _merge_field(name: str, base: Any, override: Any, *, path: str) -> Any:
    merge_key = MERGE_KEYS.get(name)
    if merge_key and isinstance(base, list) and isinstance(override, list):
        return merge_list(base, override, key=merge_key, path=path)
    if isinstance(base, dict) and isinstance(override, dict):
        return merge(base, override, path=path)
    return override


def merge_list(base: list, override: list, *, key: str, path: str) -> list:
    """Merge two lists of maps item by item on ``key``; unkeyed override items are appended."""
    merged = list(base)
    index = {item[key]: position for position, item in enumerate(merged)
             if isinstance(item, dict) and item.get(key) is not None}
    for item in override:
        if not isinstance(item, dict):
            raise PodBuildError(f"{path}: expected a list of maps, found a {type(item).__name__}")
        value = item.get(key)
        if value is not None and value in index:
            position = index[value]
            merged[position] = merge(merged[position], item, path=f"{path}[{key}={value}]")
        else:
            if value is not None:
                index[value] = len(merged)
            merged.append(item)
    return merged
