"""Admission checks intake applies to every job before it enters the ledger.

Decoding (:meth:`KubernetesJob.decode`) already holds types, required fields,
lengths and the schema version; these checks add the deployment's rules: record
size, namespace allowlist, templates by name from the configured directory (the
shared template store, :mod:`podq.shared.pods.templates`, with the workers' rules), and
``pod_override`` (shape and the default pod policy, see :mod:`.policy`). Each
returns a reason naming the field or rule, or ``None``. ``submit()`` runs the
same checks when given intake's settings, so a Python producer gets the message
intake would give before the job ever leaves it.
"""
from __future__ import annotations

import re
from functools import lru_cache

from podq.shared import clusters
from podq.shared.codec import MAX_RECORD_BYTES
from podq.shared.pods.templates import TemplateError, TemplateStore
from podq.shared.records import KubernetesJob
from podq.shared.settings import Settings

from .policy import check_override, check_pod_policy

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@lru_cache(maxsize=8)
def template_store(templates_dir: str | None) -> TemplateStore:
    """The template store of a templates directory: the one the workers read, with the same rules."""
    return TemplateStore(templates_dir)


def allowed_namespaces(settings: Settings) -> tuple[str, ...]:
    return settings.intake.namespaces or (settings.kube.namespace,)


def check_namespace(namespace: str, settings: Settings) -> str | None:
    if not _NAMESPACE.match(namespace) or len(namespace) > 63:
        return f"job.namespace: {namespace!r} is not a valid namespace name"
    allowed = allowed_namespaces(settings)
    if "*" not in allowed and namespace not in allowed:
        return f"job.namespace: {namespace!r} is not in the allowed namespaces ({', '.join(allowed)})"
    return None


def check_watched(namespace: str, settings: Settings) -> str | None:
    """Refuse a namespace the watcher settings leave out: no result could ever end its job.

    Only when ``PODQ_WATCHER_NAMESPACES`` is set: unset, the watchers' scopes may come from
    their command lines, and the reconciler ends jobs of unwatched namespaces instead.
    """
    watched = settings.watcher.namespaces
    if not watched or "*" in watched or namespace in watched:
        return None
    return (f"job.namespace: {namespace!r} is not watched (PODQ_WATCHER_NAMESPACES: {', '.join(watched)}), "
            "so nothing could report its pod")


def check_template(name: str, settings: Settings) -> str | None:
    try:
        pod = template_store(settings.intake.templates_dir).get(name)
    except TemplateError as exc:
        return f"job.pod_template: {exc}"
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
    namespace = job.namespace or settings.kube.namespace
    reason = reason or check_namespace(namespace, settings) or check_watched(namespace, settings)
    if reason is None and job.pod_template is not None:
        reason = check_template(job.pod_template, settings)
    if reason is None:
        reason = check_override(job.pod_override, enforce_policy=settings.intake.pod_policy)
    return reason or clusters.route(job, settings)[1]
