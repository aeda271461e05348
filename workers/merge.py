"""Merging pod dicts the way Kubernetes' strategic merge merges a Pod.

``merge(base, override)`` returns a new dict; neither input is changed.

* maps merge key by key, recursively; a ``None`` value in the override removes the key;
* lists with a merge key (containers by ``name``, a container's ports by ``containerPort``,
  …; the Pod's own table, :data:`podq.shared.pods.mergekeys.MERGE_KEYS`, shared with
  kubesim) merge item by item: an override item whose key matches a base item is merged
  into it, others are appended, base order is kept;
* every other list (``command``, ``args``, ``tolerations``, ``envFrom``, …) and every
  scalar is replaced by the override's value.

docs/pods.md gives the rules with examples.
"""
from __future__ import annotations

from typing import Any

from podq.shared.pods.mergekeys import MERGE_KEYS, field_path

from .errors import PodBuildError


def merge(base: Any, override: Any, *, path: str = "pod", at: str = "") -> Any:
    """``override`` merged onto ``base`` (see the module docstring).

    ``path`` names the place in error messages; ``at`` is its place in the Pod with list
    positions left out ("" for the Pod itself), which picks the merge keys.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if not isinstance(key, str):
                raise PodBuildError(f"{path}: keys must be strings, got {type(key).__name__}")
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge_field(merged[key], value, path=f"{path}.{key}", at=field_path(at, key))
            else:
                merged[key] = value
        return merged
    return override


def _merge_field(base: Any, override: Any, *, path: str, at: str) -> Any:
    merge_key = MERGE_KEYS.get(at)
    if merge_key and isinstance(base, list) and isinstance(override, list):
        return merge_list(base, override, key=merge_key, path=path, at=at)
    if isinstance(base, dict) and isinstance(override, dict):
        return merge(base, override, path=path, at=at)
    return override


def merge_list(base: list, override: list, *, key: str, path: str, at: str = "") -> list:
    """Merge two lists of maps item by item on ``key``; unkeyed override items are appended.

    ``at`` is the list's place in the Pod (see :func:`merge`), for the lists inside its items.
    """
    merged = list(base)
    index = {item[key]: position for position, item in enumerate(merged)
             if isinstance(item, dict) and item.get(key) is not None}
    for item in override:
        if not isinstance(item, dict):
            raise PodBuildError(f"{path}: expected a list of maps, found a {type(item).__name__}")
        value = item.get(key)
        if value is not None and value in index:
            position = index[value]
            merged[position] = merge(merged[position], item, path=f"{path}[{key}={value}]", at=at)
        else:
            if value is not None:
                index[value] = len(merged)
            merged.append(item)
    return merged
