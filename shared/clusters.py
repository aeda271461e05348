"""The clusters one cell creates pods in, and the rules that route a job to one of them.

A cell always has its **default cluster**: ``PODQ_KUBE_CLUSTER`` names it (``default``), and the
``PODQ_KUBE_*`` / ``PODQ_WORKER_CREATE_*`` / ``PODQ_WATCHER_NAMESPACES`` settings describe it, as
in a single-cluster cell. ``PODQ_KUBE_CLUSTERS`` names the others; each takes the cell's settings
except where ``PODQ_CLUSTER_<NAME>_<SETTING>`` (the fields of :class:`ClusterSettings`; the name
upper-cased, ``-`` as ``_``) says otherwise, e.g. ``PODQ_CLUSTER_EU_WEST_KUBECONFIG``.

A job goes to the cluster its record names (``cluster``), else to the first of ``PODQ_KUBE_ROUTES``
that matches it, else to the default. Intake decides once, before the ledger records the job, and
writes the choice into the record the ledger keeps and the workers receive: the default cluster as
no ``cluster`` at all (so a single-cluster cell's records are what they always were), any other by
its name. A redelivery carries the same record, so it never goes elsewhere.

:func:`settings_for` gives the :class:`~podq.shared.settings.Settings` a worker or watcher uses for
one cluster: the cell's, with that cluster's connection, create budget and watched namespaces.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .errors import SettingsError

if TYPE_CHECKING:
    from .records import KubernetesJob
    from .settings import Settings

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LEN = 63
ROUTE_KINDS = ("namespace", "scheduler", "template")
ENV_PREFIX = "PODQ_CLUSTER_"


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """What may differ per cluster: ``PODQ_CLUSTER_<NAME>_<SETTING>``; unset, the cell's own setting."""

    kubeconfig: str | None = None
    """Path of this cluster's kubeconfig (unset: ``PODQ_KUBE_KUBECONFIG``)."""
    context: str | None = None
    """kubeconfig context of this cluster (unset: ``PODQ_KUBE_CONTEXT``)."""
    in_cluster: bool = False
    """Reach this cluster with the pod's service account (unset: ``PODQ_KUBE_IN_CLUSTER``)."""
    request_timeout: float = 30.0
    """Seconds one API request to this cluster may take (unset: ``PODQ_KUBE_REQUEST_TIMEOUT``)."""
    create_rate: float = 1000.0
    """Ceiling of this cluster's create budget (unset: ``PODQ_WORKER_CREATE_RATE``)."""
    create_rate_start: float = 100.0
    """Where this cluster's create budget starts (unset: ``PODQ_WORKER_CREATE_RATE_START``)."""
    create_burst: int = 50
    """Creates this cluster's budget allows at once (unset: ``PODQ_WORKER_CREATE_BURST``)."""
    watch_namespaces: tuple[str, ...] = ()
    """Namespaces a watcher of this cluster watches (unset: ``PODQ_WATCHER_NAMESPACES``)."""


# Each ClusterSettings field and the (section, field) of the cell's settings it replaces.
OVERRIDES: Mapping[str, tuple[str, str]] = {
    "kubeconfig": ("kube", "kubeconfig"), "context": ("kube", "context"), "in_cluster": ("kube", "in_cluster"),
    "request_timeout": ("kube", "request_timeout"), "create_rate": ("worker", "create_rate"),
    "create_rate_start": ("worker", "create_rate_start"), "create_burst": ("worker", "create_burst"),
    "watch_namespaces": ("watcher", "namespaces"),
}


@dataclass(frozen=True)
class Cluster:
    """One named cluster and the settings it sets itself (the rest are the cell's)."""

    name: str
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Route:
    """``<kind>:<pattern>=<cluster>``: jobs whose namespace, scheduler id or template matches go there."""

    kind: str
    pattern: str
    cluster: str

    def matches(self, job: "KubernetesJob", *, namespace: str) -> bool:
        value = {"namespace": namespace, "scheduler": job.scheduler_id, "template": job.pod_template}[self.kind]
        if value is None:
            return False
        if self.pattern.endswith("*"):
            return value.startswith(self.pattern[:-1])
        return value == self.pattern

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}={self.cluster}"


def env_name(cluster: str) -> str:
    """How a cluster's name appears in its variables: ``eu-west`` -> ``EU_WEST``."""
    return cluster.upper().replace("-", "_")


def check_name(name: str, *, where: str) -> str:
    if not NAME.match(name) or len(name) > MAX_NAME_LEN:
        raise SettingsError(f"{where}: {name!r} is not a cluster name (lower-case letters, digits and '-', "
                            f"at most {MAX_NAME_LEN})")
    return name


def parse_routes(entries: tuple[str, ...], *, known: set[str]) -> tuple[Route, ...]:
    """``PODQ_KUBE_ROUTES``'s entries; raises SettingsError naming the bad one."""
    routes = []
    for entry in entries:
        head, sep, cluster = entry.rpartition("=")
        kind, colon, pattern = head.partition(":")
        kind, pattern, cluster = kind.strip(), pattern.strip(), cluster.strip()
        if not sep or not colon or kind not in ROUTE_KINDS or not pattern:
            raise SettingsError(f"PODQ_KUBE_ROUTES: {entry!r} is not <{'|'.join(ROUTE_KINDS)}>:<value or "
                                "prefix*>=<cluster>")
        if cluster not in known:
            raise SettingsError(f"PODQ_KUBE_ROUTES: {entry!r} names cluster {cluster!r}, which is not one of this "
                                f"cell's ({', '.join(sorted(known))}; PODQ_KUBE_CLUSTER, PODQ_KUBE_CLUSTERS)")
        routes.append(Route(kind, pattern, cluster))
    return tuple(routes)


def load_clusters(env: Mapping[str, str], *, default: str, names: tuple[str, ...],
                  convert) -> tuple[Cluster, ...]:
    """Every cluster of the cell, the default first, with the ``PODQ_CLUSTER_*`` variables each sets.

    ``convert(variable, raw, type)`` is the settings' own conversion. A ``PODQ_CLUSTER_*`` variable
    of no listed cluster, or of no :class:`ClusterSettings` field, is an error (a typo would
    otherwise send pods to the wrong cluster silently).
    """
    check_name(default, where="PODQ_KUBE_CLUSTER")
    ordered = [default] + [check_name(name, where="PODQ_KUBE_CLUSTERS") for name in names if name != default]
    if len(set(ordered)) != len(ordered):
        raise SettingsError(f"PODQ_KUBE_CLUSTERS: a cluster is named twice ({', '.join(names)})")
    kinds = {item.name: item.type for item in dataclasses.fields(ClusterSettings)}
    clusters, claimed = [], set()
    for name in ordered:
        prefix = f"{ENV_PREFIX}{env_name(name)}_"
        overrides = []
        for field_name, kind in kinds.items():
            variable = f"{prefix}{field_name.upper()}"
            if variable in env:
                overrides.append((field_name, convert(variable, env[variable], kind)))
                claimed.add(variable)
        clusters.append(Cluster(name, tuple(overrides)))
    stray = sorted(variable for variable in env if variable.startswith(ENV_PREFIX) and variable not in claimed)
    if stray:
        raise SettingsError(f"{stray[0]}: no such cluster setting (clusters: {', '.join(ordered)}; settings: "
                            f"{', '.join(name.upper() for name in kinds)})")
    return tuple(clusters)


def names(settings: "Settings") -> tuple[str, ...]:
    """The cell's cluster names, the default first."""
    return tuple(cluster.name for cluster in settings.clusters) or (settings.kube.cluster,)


def default_name(settings: "Settings") -> str:
    return settings.clusters[0].name if settings.clusters else settings.kube.cluster


def canonical(settings: "Settings", name: str | None) -> str | None:
    """A record's cluster as podq keeps it: None for the default cluster, else its name."""
    return None if name is None or name == default_name(settings) else name


def as_recorded(settings: "Settings") -> tuple[str | None, ...]:
    """Every cluster of the cell as records and the ledger hold it: None for the default, then the others."""
    return tuple(canonical(settings, name) for name in names(settings))


def route(job: "KubernetesJob", settings: "Settings") -> tuple[str | None, str | None]:
    """Where ``job`` goes: ``(cluster, None)`` (None for the default) or ``(None, why it is refused)``."""
    known = names(settings)
    if job.cluster is not None:
        if job.cluster not in known:
            return None, (f"job.cluster: {job.cluster!r} is not a cluster of this cell (clusters: "
                          f"{', '.join(known)})")
        return canonical(settings, job.cluster), None
    namespace = job.namespace or settings.kube.namespace
    for rule in settings.routes:
        if rule.matches(job, namespace=namespace):
            return canonical(settings, rule.cluster), None
    return None, None


def settings_for(settings: "Settings", name: str | None) -> "Settings":
    """The settings a worker or watcher uses for cluster ``name`` (None: the default)."""
    name = name or default_name(settings)
    cluster = next((item for item in settings.clusters if item.name == name),
                   Cluster(name) if name == default_name(settings) else None)
    if cluster is None:
        raise SettingsError(f"cluster {name!r} is not one of this cell's ({', '.join(names(settings))}; "
                            "PODQ_KUBE_CLUSTERS)")
    sections: dict[str, dict[str, Any]] = {"kube": {"cluster": name}, "worker": {}, "watcher": {}}
    for field_name, value in cluster.overrides:
        section, target = OVERRIDES[field_name]
        sections[section][target] = value
    return dataclasses.replace(settings, **{section: dataclasses.replace(getattr(settings, section), **values)
                                            for section, values in sections.items()})


def is_default(settings: "Settings") -> bool:
    """True when ``settings`` (from :func:`settings_for`) are the default cluster's."""
    return settings.kube.cluster == default_name(settings)
