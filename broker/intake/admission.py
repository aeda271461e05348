"""Admission checks intake applies to every job before it enters the ledger.

Decoding (:meth:`KubernetesJob.decode`) already holds types, required fields,
lengths and the schema version; these checks add the deployment's rules: record
size, namespace allowlist, templates by name from the configured directory, and
``pod_override`` (shape and the default pod policy, see :mod:`.policy`). Each
returns a reason naming the field or rule, or ``None``. ``submit()`` runs the
same checks when given intake's settings, so a Python producer gets the message
intake would give before the job ever leaves it.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from podq.shared.codec import MAX_RECORD_BYTES
from podq.shared.records import KubernetesJob
from podq.shared.settings import Settings

from .policy import check_override, check_pod_policy

_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json")


def is_template_name(name: str) -> bool:
    """A bare name (letters, digits, ``_ . -``; no path separators, no ``..``)."""
    return bool(_TEMPLATE_NAME.match(name)) and ".." not in name


def template_path(templates_dir: str | None, name: str) -> Path | None:
    """Where template ``name`` lives, or None when it has no file there."""
    if templates_dir is None or not is_template_name(name):
        return None
    directory = Path(templates_dir)
    for suffix in TEMPLATE_SUFFIXES:
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=128)
def _load_template(path: str, _mtime_ns: int) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_template(path: Path) -> Any:
    """The parsed template (cached until the file changes); raises ValueError if unreadable."""
    try:
        return _load_template(str(path), os.stat(path).st_mtime_ns)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        # Parser messages quote the file; a producer sees only that it is unusable.
        raise ValueError("unreadable") from None


def allowed_namespaces(settings: Settings) -> tuple[str, ...]:
    return settings.intake.namespaces or (settings.kube.namespace,)


def check_namespace(namespace: str, settings: Settings) -> str | None:
    if not _NAMESPACE.match(namespace) or len(namespace) > 63:
        return f"job.namespace: {namespace!r} is not a valid namespace name"
    allowed = allowed_namespaces(settings)
    if "*" not in allowed and namespace not in allowed:
        return f"job.namespace: {namespace!r} is not in the allowed namespaces ({', '.join(allowed)})"
    return None


def check_template(name: str, settings: Settings) -> str | None:
    if not is_template_name(name):
        return f"job.pod_template: {name!r} is not a template name (names only, no paths)"
    path = template_path(settings.intake.templates_dir, name)
    if path is None:
        return f"job.pod_template: no template named {name!r} is configured"
    try:
        pod = load_template(path)
    except ValueError:
        return f"job.pod_template: template {name!r} cannot be read as YAML"
    if not isinstance(pod, dict):
        return f"job.pod_template: template {name!r} is not a map"
    if settings.intake.pod_policy:
        return check_pod_policy(pod, where=f"job.pod_template[{name}]")
    return None


def check_size(job: KubernetesJob, settings: Settings) -> str | None:
    limit = min(settings.intake.max_record_bytes, MAX_RECORD_BYTES)
    size = len(job.encode())
    if size > limit:
        return f"job: record is {size} bytes, over the {limit}-byte limit"
    return None


def check_job(job: KubernetesJob, settings: Settings) -> str | None:
    """Why intake would refuse ``job``, or None when it admits it."""
    reason = check_size(job, settings)
    reason = reason or check_namespace(job.namespace or settings.kube.namespace, settings)
    if reason is None and job.pod_template is not None:
        reason = check_template(job.pod_template, settings)
    if reason is None:
        reason = check_override(job.pod_override, enforce_policy=settings.intake.pod_policy)
    return reason
