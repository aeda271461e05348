"""Admission checks intake applies to every job before it enters the ledger.

Each check returns a reason naming the field or rule it failed, or ``None``.
``submit()`` runs the same checks when given intake's settings, so a Python
producer gets the message intake would give before the job ever leaves it.
"""
from __future__ import annotations

import re
from pathlib import Path

from podq.shared.records import KubernetesJob
from podq.shared.settings import Settings

_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def template_path(templates_dir: str | None, name: str) -> Path | None:
    """Where template ``name`` lives, or None when it has no file there."""
    if templates_dir is None or not _TEMPLATE_NAME.match(name) or ".." in name:
        return None
    directory = Path(templates_dir)
    for suffix in (".yaml", ".yml", ".json"):
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def allowed_namespaces(settings: Settings) -> tuple[str, ...]:
    return settings.intake.namespaces or (settings.kube.namespace,)


def check_job(job: KubernetesJob, settings: Settings) -> str | None:
    """Why intake would refuse ``job``, or None when it admits it."""
    namespace = job.namespace or settings.kube.namespace
    if not _NAMESPACE.match(namespace) or len(namespace) > 63:
        return f"job.namespace: {namespace!r} is not a valid namespace name"
    allowed = allowed_namespaces(settings)
    if "*" not in allowed and namespace not in allowed:
        return f"job.namespace: {namespace!r} is not in the allowed namespaces ({', '.join(allowed)})"
    if job.pod_template is not None:
        if not _TEMPLATE_NAME.match(job.pod_template) or ".." in job.pod_template:
            return (f"job.pod_template: {job.pod_template!r} is not a template name "
                    "(names only, no paths)")
        if template_path(settings.intake.templates_dir, job.pod_template) is None:
            return f"job.pod_template: no template named {job.pod_template!r} is configured"
    return None
