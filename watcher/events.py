"""Raw watch lines in, podq's typed view of a pod event out: the one conversion.

The API server's JSON is typed here at the boundary (``Raw*`` TypedDicts) and
turned into a :class:`PodEvent` by :func:`to_event`; nothing past this module
touches the raw shapes. Lines are decoded with orjson: letting the kubernetes
client build ``V1Pod`` models costs ~250 µs per event, this costs a few.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from enum import Enum
from typing import Any, TypedDict

import orjson

from podq.shared import naming
from podq.shared.records import TaskKey

from .errors import WatcherError


class RawContainerStatus(TypedDict, total=False):
    name: str
    state: dict[str, dict[str, Any]]


class RawPodStatus(TypedDict, total=False):
    phase: str
    reason: str
    message: str
    conditions: list[dict[str, Any]]
    initContainerStatuses: list[RawContainerStatus]
    containerStatuses: list[RawContainerStatus]


class RawMetadata(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    resourceVersion: str
    creationTimestamp: str
    deletionTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]


class RawPod(TypedDict, total=False):
    metadata: RawMetadata
    status: RawPodStatus


class RawEvent(TypedDict):
    type: str
    object: Any


class EventType(str, Enum):
    """A watch event's type; ``LISTED`` marks a pod read by a (re)list, not a watch."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"
    LISTED = "LISTED"


class BadEvent(WatcherError):
    """A watch line that is not a pod event the watcher can read."""


@dataclass(frozen=True, slots=True)
class ContainerView:
    """One container's current state: ``waiting``, ``running``, ``terminated`` or None."""

    name: str
    init: bool
    state: str | None
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """Which job a pod runs, read from podq's annotations."""

    job_id: str
    scheduler_id: str
    key: TaskKey
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class PodView:
    """What the watcher needs of a pod, typed."""

    name: str
    namespace: str
    uid: str | None
    resource_version: str | None
    phase: str | None
    reason: str | None
    message: str | None
    deleting: bool
    revoked: bool
    done: bool
    identity: PodIdentity | None
    containers: tuple[ContainerView, ...] = ()
    unschedulable: tuple[str, str | None] | None = None  # PodScheduled=False: (reason, message)
    created_at: float | None = None
    was_ready: bool = False   # a Ready or ContainersReady condition is True: its containers ran

    @property
    def unscheduled(self) -> str | None:
        """Why the pod is not scheduled, as one line (``Unschedulable: 0/3 nodes …``), or None."""
        if self.unschedulable is None:
            return None
        reason, message = self.unschedulable
        return f"{reason}: {message}" if message else reason

    @property
    def ref(self) -> str:
        """The pod's field in the watcher's state hash: ``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ApiStatus:
    """An ERROR event's Status object."""

    code: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class PodEvent:
    type: EventType
    resource_version: str | None
    pod: PodView | None = None
    error: ApiStatus | None = None


_TASK_ANNOTATIONS = (naming.DAG_ID, naming.TASK_ID, naming.RUN_ID, naming.TRY_NUMBER, naming.MAP_INDEX,
                     naming.LAUNCH_ID_KEY, naming.JOB_ID_KEY, naming.SCHEDULER_ID_KEY, naming.TRACEPARENT)


def decode_line(line: bytes | str) -> PodEvent:
    """One watch line (a JSON document) as a :class:`PodEvent`."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"watch line is not JSON ({exc}): {line[:200]!r}") from None
    if not isinstance(raw, dict):
        raise BadEvent(f"watch line is not an object: {line[:200]!r}")
    return to_event(raw)  # type: ignore[arg-type]


def to_event(raw: RawEvent) -> PodEvent:
    """Convert one raw watch event."""
    try:
        kind = EventType(raw.get("type"))
    except ValueError:
        raise BadEvent(f"unknown watch event type {raw.get('type')!r}") from None
    obj = raw.get("object") or {}
    if kind is EventType.ERROR:
        return PodEvent(type=kind, resource_version=None,
                        error=ApiStatus(code=int(obj.get("code") or 0), reason=str(obj.get("reason") or ""),
                                        message=str(obj.get("message") or "")))
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    if kind is EventType.BOOKMARK:
        return PodEvent(type=kind, resource_version=rv)
    return PodEvent(type=kind, resource_version=rv, pod=pod_view(obj))


def in_selector(raw: RawPod) -> bool:
    """Whether the watcher's label selector (:func:`podq.shared.naming.podq_selector`) matches the pod."""
    labels = (raw.get("metadata") or {}).get("labels") or {}
    return (labels.get(naming.KUBERNETES_EXECUTOR) == "True" and naming.JOB_ID_KEY in labels
            and labels.get(naming.EXECUTOR_DONE) != "True")


def pod_view(raw: RawPod) -> PodView:
    """Convert one raw pod (from a watch event or a list page)."""
    meta = raw.get("metadata") or {}
    status = raw.get("status") or {}
    labels = meta.get("labels") or {}
    name = meta.get("name")
    if not name:
        raise BadEvent("pod without metadata.name")
    return PodView(
        name=name, namespace=meta.get("namespace") or "", uid=meta.get("uid"),
        resource_version=meta.get("resourceVersion"), phase=status.get("phase"),
        reason=status.get("reason"), message=status.get("message"),
        deleting=bool(meta.get("deletionTimestamp")),
        revoked=naming.POD_REVOKED in labels, done=labels.get(naming.EXECUTOR_DONE) == "True",
        identity=_identity(meta.get("annotations") or {}),
        containers=_containers(status.get("initContainerStatuses"), init=True)
        + _containers(status.get("containerStatuses"), init=False),
        unschedulable=_unscheduled(status.get("conditions")),
        was_ready=any(c.get("type") in ("Ready", "ContainersReady") and c.get("status") == "True"
                      for c in status.get("conditions") or ()),
        created_at=_timestamp(meta.get("creationTimestamp")),
    )


# A pod's identity comes with each of its ~7 events: it is read once per (job id, scheduler id) and
# shared (PodIdentity and its annotations dict are never mutated). The job id is derived from the
# scheduler id and the task key, so the pair determines the rest; an adoption changes the scheduler
# id, and so the entry. The cache is emptied when it grows past _IDENTITIES_KEPT.
_identities: dict[tuple[str, str], PodIdentity | None] = {}
_IDENTITIES_KEPT = 50_000


def _identity(annotations: dict[str, str]) -> PodIdentity | None:
    job_id = annotations.get(naming.JOB_ID_KEY)
    scheduler_id = annotations.get(naming.SCHEDULER_ID_KEY)
    if not job_id or not scheduler_id:
        return None
    try:
        return _identities[job_id, scheduler_id]
    except KeyError:
        pass
    if len(_identities) >= _IDENTITIES_KEPT:
        _identities.clear()
    identity = _identities[job_id, scheduler_id] = _read_identity(annotations)
    return identity


def _read_identity(annotations: dict[str, str]) -> PodIdentity | None:
    job_id = annotations.get(naming.JOB_ID_KEY)
    scheduler_id = annotations.get(naming.SCHEDULER_ID_KEY)
    if not job_id or not scheduler_id:
        return None
    try:
        key = TaskKey(dag_id=annotations.get(naming.DAG_ID, ""), task_id=annotations.get(naming.TASK_ID, ""),
                      run_id=annotations.get(naming.RUN_ID, ""),
                      try_number=int(annotations.get(naming.TRY_NUMBER) or 1),
                      map_index=int(annotations.get(naming.MAP_INDEX) or -1),
                      launch_id=annotations.get(naming.LAUNCH_ID_KEY) or None)
    except ValueError:
        return None
    kept = {name: annotations[name] for name in _TASK_ANNOTATIONS if name in annotations}
    return PodIdentity(job_id=job_id, scheduler_id=scheduler_id, key=key, annotations=kept)


def _containers(statuses: list[RawContainerStatus] | None, *, init: bool) -> tuple[ContainerView, ...]:
    if not statuses:
        return ()
    views = []
    for status in statuses:
        state = status.get("state") or {}
        for which in ("terminated", "waiting", "running"):
            detail = state.get(which)
            if detail is not None:
                code = detail.get("exitCode")
                views.append(ContainerView(name=status.get("name") or "unknown", init=init, state=which,
                                           reason=detail.get("reason"), message=detail.get("message"),
                                           exit_code=int(code) if code is not None else None))
                break
        else:
            views.append(ContainerView(name=status.get("name") or "unknown", init=init, state=None))
    return tuple(views)


def _unscheduled(conditions: list[dict[str, Any]] | None) -> tuple[str, str | None] | None:
    for condition in conditions or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return condition.get("reason") or "NotScheduled", condition.get("message") or None
    return None


@lru_cache(maxsize=8192)  # a pod's creationTimestamp comes with each of its events
def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
