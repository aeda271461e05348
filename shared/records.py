"""podq's wire records: frozen, typed, and able to encode and decode themselves.

``KubernetesJob`` goes in (``podq:jobs``), ``ControlRecord`` too (``podq:control``),
``KubernetesWatch`` comes out (``podq:results:<scheduler_id>``), and a scheduler
reads each result as ``KubernetesResults``. docs/protocol.md is the contract.
"""
from __future__ import annotations

import hashlib

import time
from dataclasses import dataclass, field
from typing import Any

from . import codec, tracing
from .naming import TRACEPARENT as TRACEPARENT_ANNOTATION
from .naming import derive_job_id
from .states import ControlOp, Source, State
from .errors import DecodeError
from .wellformed import top_level_values
from .wire import FieldReader

MAX_ID_LEN = 250
MAX_RUN_ID_LEN = 250
MAX_LAUNCH_ID_LEN = 128
MAX_CLUSTER_LEN = 63


@dataclass(frozen=True, kw_only=True)
class TaskKey:
    """Airflow's task instance key: which try of which task of which run, and which launch of it.

    ``launch_id`` names one launch of the try when a scheduler launches a try more than once
    (Airflow re-queues a sensor in reschedule mode and a deferred task under the same try): each
    launch is then its own job, with its own pod. None: one job per try.
    """

    dag_id: str
    task_id: str
    run_id: str
    try_number: int = 1
    map_index: int = -1
    launch_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = {"dag_id": self.dag_id, "task_id": self.task_id, "run_id": self.run_id,
                "try_number": self.try_number, "map_index": self.map_index}
        if self.launch_id is not None:
            wire["launch_id"] = self.launch_id
        return wire

    @classmethod
    def from_reader(cls, reader: FieldReader) -> "TaskKey":
        return cls(dag_id=reader.str("dag_id", max_len=MAX_ID_LEN),
                   task_id=reader.str("task_id", max_len=MAX_ID_LEN),
                   run_id=reader.str("run_id", max_len=MAX_RUN_ID_LEN),
                   try_number=reader.int("try_number", minimum=0, default=1),
                   map_index=reader.int("map_index", minimum=-1, default=-1),
                   launch_id=reader.str("launch_id", required=False, max_len=MAX_LAUNCH_ID_LEN))

    def __str__(self) -> str:
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        launch = f" launch={self.launch_id}" if self.launch_id is not None else ""
        return f"{self.dag_id}.{self.task_id}{suffix} run={self.run_id} try={self.try_number}{launch}"


@dataclass(frozen=True, kw_only=True)
class KubernetesJob:
    """One task to run as one pod."""

    job_id: str
    scheduler_id: str
    key: TaskKey
    command: tuple[str, ...] = ()
    namespace: str | None = None
    pod_template: str | None = None
    pod_override: dict[str, Any] | None = None
    submitted_at: float = 0.0
    traceparent: str | None = None
    """W3C trace context (optional; intake starts one for a job without). On the wire only when set."""
    priority: int = 0
    """Among its scheduler's jobs waiting for create capacity, a higher priority goes first (a 32-bit
    signed integer; Airflow's ``priority_weight``). On the wire only when not 0."""
    cluster: str | None = None
    """The cluster to run the pod in (optional; else intake's routing rules, else the cell's default
    cluster). On the wire only when set."""

    KIND = "job"

    @classmethod
    def new(cls, *, scheduler_id: str, key: TaskKey, command=(), namespace: str | None = None,
            pod_template: str | None = None, pod_override: dict | None = None,
            traceparent: str | None = None, priority: int = 0, cluster: str | None = None) -> "KubernetesJob":
        """A job whose ``job_id`` is derived, once, from the scheduler id and the task key."""
        return cls(job_id=derive_job_id(scheduler_id, key), scheduler_id=scheduler_id, key=key,
                   command=tuple(command), namespace=namespace, pod_template=pod_template,
                   pod_override=pod_override, submitted_at=time.time(), traceparent=traceparent,
                   priority=priority, cluster=cluster)

    def to_wire(self) -> dict[str, Any]:
        wire = {"job_id": self.job_id, "scheduler_id": self.scheduler_id,
                "task_key": self.key.to_wire(), "command": list(self.command),
                "namespace": self.namespace, "pod_template": self.pod_template,
                "pod_override": self.pod_override, "submitted_at": self.submitted_at}
        if self.traceparent is not None:
            wire["traceparent"] = self.traceparent
        if self.priority:
            wire["priority"] = self.priority
        if self.cluster is not None:
            wire["cluster"] = self.cluster
        return wire

    def encode(self) -> bytes:
        return codec.pack(self.KIND, self.to_wire())

    @classmethod
    def decode(cls, payload: Any) -> "KubernetesJob":
        reader = codec.unpack(payload, cls.KIND)
        scheduler_id = reader.str("scheduler_id", max_len=MAX_ID_LEN)
        key = TaskKey.from_reader(reader.sub("task_key"))
        expected = derive_job_id(scheduler_id, key)
        job_id = reader.str("job_id", required=False, max_len=64) or expected
        if job_id != expected:
            raise reader.fail("job_id", f"does not match the scheduler id and task key (expected {expected})")
        return cls(job_id=job_id, scheduler_id=scheduler_id, key=key,
                   command=reader.str_list("command"),
                   namespace=reader.str("namespace", required=False, max_len=63),
                   pod_template=reader.str("pod_template", required=False, max_len=253),
                   pod_override=reader.map("pod_override"),
                   submitted_at=reader.float("submitted_at"),
                   traceparent=_traceparent(reader), priority=_priority(reader),
                   cluster=reader.str("cluster", required=False, max_len=MAX_CLUSTER_LEN))

    @staticmethod
    def scheduler_of(payload: Any) -> str | None:
        """The scheduler id a job record names, read cheaply (about a tenth of :meth:`decode`'s cost)
        and trusted for nothing but ordering: :meth:`decode` checks it. None when it cannot be read."""
        value = codec.peek(payload, "scheduler_id")
        return value if isinstance(value, str) else None

    @classmethod
    def identity(cls, payload: Any) -> "tuple[str, TaskKey] | None":
        """The scheduler id and task key of a job record, whatever else is wrong with it.

        Both can be read when the payload is whole msgpack whose top-level map holds
        ``scheduler_id`` and ``task_key`` once each, and each is valid on its own (the
        field rules and the well-formedness rule). Intake publishes a refused job's
        ``failed`` result to that scheduler; None means there is no one to tell.
        """
        if isinstance(payload, str):
            payload = payload.encode("utf-8", "surrogateescape")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            return None
        values = top_level_values(bytes(payload))
        if values is None or len(values.get("scheduler_id", ())) != 1 or len(values.get("task_key", ())) != 1:
            return None
        try:
            reader = FieldReader({name: codec.loads(values[name][0], f"{cls.KIND}.{name}")
                                  for name in ("scheduler_id", "task_key")}, cls.KIND)
            return reader.str("scheduler_id", max_len=MAX_ID_LEN), TaskKey.from_reader(reader.sub("task_key"))
        except DecodeError:
            return None

    @classmethod
    def traceparent_of(cls, payload: bytes) -> str | None:
        """A job record's valid traceparent, whatever else is wrong with it; None when there is none."""
        values = top_level_values(bytes(payload))
        found = (values or {}).get("traceparent", ())
        if len(found) != 1:
            return None
        try:
            value = codec.loads(found[0], f"{cls.KIND}.traceparent")
        except DecodeError:
            return None
        return value if isinstance(value, str) and tracing.check(value) is None else None


PRIORITY_RANGE = (-2 ** 31, 2 ** 31 - 1)


def _priority(reader: FieldReader) -> int:
    value = reader.int("priority", required=False, minimum=PRIORITY_RANGE[0], default=0)
    if value > PRIORITY_RANGE[1]:
        raise reader.fail("priority", f"must be <= {PRIORITY_RANGE[1]}, got {value}")
    return value


def _traceparent(reader: FieldReader) -> str | None:
    value = reader.str("traceparent", required=False, max_len=55)
    if value is not None and (problem := tracing.check(value)):
        raise reader.fail("traceparent", problem)
    return value


@dataclass(frozen=True, kw_only=True)
class ControlRecord:
    """A producer's request to act on a job (or, for adopt, on a scheduler's jobs)."""

    op: ControlOp
    scheduler_id: str
    job_id: str | None = None
    new_scheduler_id: str | None = None
    delete_options: dict[str, Any] | None = None
    reason: str | None = None
    requested_at: float = 0.0

    KIND = "control"

    def to_wire(self) -> dict[str, Any]:
        return {"op": self.op.value, "scheduler_id": self.scheduler_id, "job_id": self.job_id,
                "new_scheduler_id": self.new_scheduler_id, "delete_options": self.delete_options,
                "reason": self.reason, "requested_at": self.requested_at}

    def encode(self) -> bytes:
        return codec.pack(self.KIND, self.to_wire())

    @classmethod
    def decode(cls, payload: Any) -> "ControlRecord":
        reader = codec.unpack(payload, cls.KIND)
        op = reader.choice("op", ControlOp)
        record = cls(op=op, scheduler_id=reader.str("scheduler_id", max_len=MAX_ID_LEN),
                     job_id=reader.str("job_id", required=op is not ControlOp.ADOPT, max_len=64),
                     new_scheduler_id=reader.str("new_scheduler_id", required=op is ControlOp.ADOPT,
                                                 max_len=MAX_ID_LEN),
                     delete_options=reader.map("delete_options"),
                     reason=reader.str("reason", required=False, max_len=1024),
                     requested_at=reader.float("requested_at"))
        return record


MAX_FAILURE_EVENTS = 20
MAX_FAILURE_LOG_LINES = 1000


@dataclass(frozen=True, kw_only=True)
class FailureDetails:
    """Why a job failed: the pod's and the failing container's story, or the API's answer."""

    pod_status: str | None = None
    pod_reason: str | None = None
    pod_message: str | None = None
    container_state: str | None = None
    container_reason: str | None = None
    container_message: str | None = None
    exit_code: int | None = None
    container_type: str | None = None
    container_name: str | None = None
    reason: str | None = None
    message: str | None = None
    events: tuple[str, ...] | None = None
    """The pod's last Kubernetes Events, oldest first, for a job that never ran (``Warning FailedMount: …``)."""
    log_tail: tuple[str, ...] | None = None
    """The last lines of the failing container's log, oldest first, when it started (opt-in:
    ``PODQ_WATCHER_FAILURE_LOG_LINES``)."""

    def to_wire(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in self.__dict__.items() if value is not None}

    @classmethod
    def from_reader(cls, reader: FieldReader) -> "FailureDetails":
        strings = {name: reader.str(name, required=False, max_len=32768, allow_empty=True)
                   for name in ("pod_status", "pod_reason", "pod_message", "container_state",
                                "container_reason", "container_message", "container_type",
                                "container_name", "reason", "message")}
        events = reader.str_list("events", max_items=MAX_FAILURE_EVENTS, max_len=32768)
        log_tail = reader.str_list("log_tail", max_items=MAX_FAILURE_LOG_LINES, max_len=32768)
        return cls(exit_code=reader.int("exit_code", required=False), events=events or None,
                   log_tail=log_tail or None, **strings)


@dataclass(frozen=True, kw_only=True)
class PendingReason:
    """Why a Pending pod is not running yet, as it changes: Kubernetes' own reason and message
    (``Unschedulable`` with the scheduler's message, a container's ``ImagePullBackOff``, ...)."""

    reason: str
    message: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if value is not None}

    @classmethod
    def from_reader(cls, reader: FieldReader) -> "PendingReason":
        return cls(reason=reader.str("reason", max_len=256),
                   message=reader.str("message", required=False, max_len=32768, allow_empty=True))

    def fingerprint(self) -> str:
        """What two reasons must share to count as the same (the publish script compares it)."""
        return hashlib.sha256(f"{self.reason}\x1f{self.message or ''}".encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class KubernetesWatch:
    """One result published to a scheduler's results stream."""

    event_id: str
    job_id: str
    scheduler_id: str
    key: TaskKey
    source: Source
    state: State
    pod_name: str | None = None
    namespace: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: str | None = None
    failure_details: FailureDetails | None = None
    pending_reason: PendingReason | None = None
    emitted_at: float = 0.0
    cluster: str | None = None
    """The cluster of the job's pod (None: not known, e.g. a refused record). On the wire only when set."""

    KIND = "result"

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def traceparent(self) -> str | None:
        """The job's W3C trace context, carried among the result's annotations."""
        return self.annotations.get(TRACEPARENT_ANNOTATION)

    @classmethod
    def build(cls, *, job_id: str, scheduler_id: str, key: TaskKey, source: Source, state: State,
              pod_name: str | None = None, namespace: str | None = None,
              annotations: dict[str, str] | None = None, resource_version: str | None = None,
              failure_details: FailureDetails | None = None, pending_reason: PendingReason | None = None,
              again: str | None = None, cluster: str | None = None) -> "KubernetesWatch":
        """A result with its event id derived by the rule in :func:`event_id_for` (``again``: what
        tells a later ``pending`` of the job from its first, see there)."""
        return cls(event_id=event_id_for(job_id, state, scheduler_id=scheduler_id, again=again), job_id=job_id,
                   scheduler_id=scheduler_id, key=key, source=source, state=state,
                   pod_name=pod_name, namespace=namespace, annotations=annotations or {},
                   resource_version=resource_version, failure_details=failure_details,
                   pending_reason=pending_reason, emitted_at=time.time(), cluster=cluster)

    def to_wire(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "job_id": self.job_id, "scheduler_id": self.scheduler_id,
                "task_key": self.key.to_wire(), "source": self.source.value,
                "state": self.state.value, "terminal": self.terminal,
                "pod_name": self.pod_name, "namespace": self.namespace,
                "annotations": self.annotations, "resource_version": self.resource_version,
                "failure_details": self.failure_details.to_wire() if self.failure_details else None,
                **({"pending_reason": self.pending_reason.to_wire()} if self.pending_reason else {}),
                "emitted_at": self.emitted_at,
                **({"cluster": self.cluster} if self.cluster is not None else {})}

    def encode(self) -> bytes:
        return codec.pack(self.KIND, self.to_wire())

    @classmethod
    def decode(cls, payload: Any) -> "KubernetesWatch":
        reader = codec.unpack(payload, cls.KIND)
        # Field by field in the order of docs/protocol.md's table: the first problem is the refusal.
        fields = dict(event_id=reader.str("event_id", max_len=512),
                      job_id=reader.str("job_id", max_len=64),
                      scheduler_id=reader.str("scheduler_id", max_len=MAX_ID_LEN),
                      key=TaskKey.from_reader(reader.sub("task_key")),
                      source=reader.choice("source", Source),
                      state=reader.choice("state", State),
                      pod_name=reader.str("pod_name", required=False, max_len=253),
                      namespace=reader.str("namespace", required=False, max_len=63),
                      annotations=reader.str_map("annotations"),
                      resource_version=reader.str("resource_version", required=False, max_len=64))
        details = reader.sub("failure_details", required=False)
        reason = reader.sub("pending_reason", required=False)
        return cls(**fields, failure_details=FailureDetails.from_reader(details) if details else None,
                   pending_reason=PendingReason.from_reader(reason) if reason else None,
                   emitted_at=reader.float("emitted_at"),
                   cluster=reader.str("cluster", required=False, max_len=MAX_CLUSTER_LEN))


def event_id_for(job_id: str, state: State, *, scheduler_id: str | None = None, again: str | None = None) -> str:
    """The duplicate-detection id of a result: one per job and state, whoever publishes it.

    ``adopted`` is published once per old scheduler, so its id names that scheduler. A job's
    first ``pending`` is ``<job_id>:pending``; a later one (a new pending reason) adds what
    tells it apart, ``again``: the resourceVersion of the pod state that changed the reason.
    """
    if state is State.ADOPTED:
        return f"{job_id}:{state.value}:{scheduler_id}"
    if again and state is State.PENDING:
        return f"{job_id}:{state.value}:{again}"
    return f"{job_id}:{state.value}"


@dataclass(frozen=True, kw_only=True)
class KubernetesResults:
    """What a scheduler reads: one result and the stream entry it came from (ack that id)."""

    entry_id: str
    event_id: str
    job_id: str
    key: TaskKey
    state: State
    terminal: bool
    pod_name: str | None
    namespace: str | None
    resource_version: str | None
    failure_details: FailureDetails | None
    source: Source
    annotations: dict[str, str] = field(default_factory=dict)
    pending_reason: PendingReason | None = None
    cluster: str | None = None

    @property
    def traceparent(self) -> str | None:
        """The job's W3C trace context (docs/protocol.md), from the result's annotations."""
        return self.annotations.get(TRACEPARENT_ANNOTATION)

    @classmethod
    def from_watch(cls, entry_id: str, watch: KubernetesWatch) -> "KubernetesResults":
        return cls(entry_id=entry_id, event_id=watch.event_id, job_id=watch.job_id, key=watch.key,
                   state=watch.state, terminal=watch.terminal, pod_name=watch.pod_name,
                   namespace=watch.namespace, resource_version=watch.resource_version,
                   failure_details=watch.failure_details, source=watch.source,
                   annotations=watch.annotations, pending_reason=watch.pending_reason, cluster=watch.cluster)
