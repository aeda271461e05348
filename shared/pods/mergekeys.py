"""The Pod's strategic-merge keys: which lists merge item by item, and on which field.

One table for the workers (``pod_override`` onto a template, workers/merge.py) and
kubesim (``application/strategic-merge-patch+json``, kubesim/patching.py), so that an
override means what the same patch would mean to a real API server. The entries are
the Pod's fields that Kubernetes declares ``patchStrategy:"merge"`` with a
``patchMergeKey`` (k8s.io/api core/v1 and meta/v1 types). Every other list is replaced
whole, e.g. ``readinessGates``, ``tolerations``, ``envFrom``, ``command``, ``args``.

A path names a field from the Pod's root with list positions left out:
``spec.containers.env`` is the ``env`` of any container.

This module imports nothing of podq: kubesim, which otherwise stands alone, uses it.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_FIELDS = {"env": "name", "ports": "containerPort", "volumeMounts": "mountPath",
                     "volumeDevices": "devicePath"}

MERGE_KEYS: Mapping[str, str] = MappingProxyType({
    "metadata.ownerReferences": "uid",
    **{f"spec.{containers}": "name" for containers in _CONTAINER_LISTS},
    **{f"spec.{containers}.{field}": key
       for containers in _CONTAINER_LISTS for field, key in _CONTAINER_FIELDS.items()},
    "spec.volumes": "name",
    "spec.imagePullSecrets": "name",
    "spec.hostAliases": "ip",
    "spec.topologySpreadConstraints": "topologyKey",
    "spec.schedulingGates": "name",
    "spec.resourceClaims": "name",
    "status.conditions": "type",
    "status.podIPs": "ip",
    "status.hostIPs": "ip",
    "status.resourceClaimStatuses": "name",
})
"""Path of a keyed list → the field its items merge on."""

SET_LISTS: frozenset[str] = frozenset({"metadata.finalizers"})
"""Lists of scalars merged as sets (``patchStrategy:"merge"`` without a key)."""


def field_path(path: str, field: str) -> str:
    """The path of ``field`` inside the object at ``path`` ("" is the Pod itself)."""
    return f"{path}.{field}" if path else field
