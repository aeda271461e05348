"""core/v1 Events about pods: what the simulated scheduler and kubelet report, listed and watched like pods.

The scheduler and kubelet call :meth:`EventLog.record`. As a real event recorder does, an event equal to
an earlier one about the same pod (type, reason, message, source) is not stored twice: the earlier one's
``count`` goes up and its ``lastTimestamp`` moves (a MODIFIED). Events have their own revision counter
(resourceVersions are opaque; a client never compares a pod's with an event's) and a bounded history
for watches to resume from; the oldest events are dropped past ``size``, as a real cluster's event TTL does.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from .clock import initial_resource_version, rfc3339
from .history import ADDED, DELETED, MODIFIED, Event, History
from .watchers import WatchHub

JsonDict = dict[str, Any]

WARNING = "Warning"
NORMAL = "Normal"
SCHEDULER = "default-scheduler"
KUBELET = "kubelet"


def _path(*keys: str):
    def read(obj: JsonDict) -> str:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return "" if value is None else str(value)

    return read


EVENT_FIELDS = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
    "involvedObject.kind": _path("involvedObject", "kind"),
    "involvedObject.namespace": _path("involvedObject", "namespace"),
    "involvedObject.name": _path("involvedObject", "name"),
    "involvedObject.uid": _path("involvedObject", "uid"),
    "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
    "reason": _path("reason"),
    "type": _path("type"),
    "source": _path("source", "component"),
    "reportingComponent": _path("reportingComponent"),
}


class EventLog:
    """The events of one simulated cluster."""

    def __init__(self, *, size: int = 20000) -> None:
        self.rv = initial_resource_version()
        self.size = max(1, size)
        self.events: dict[tuple[str, str], JsonDict] = {}  # (namespace, name) -> event, oldest first
        self._same: dict[tuple[str, ...], tuple[str, str]] = {}  # aggregation key -> (namespace, name)
        self._key_of: dict[tuple[str, str], tuple[str, ...]] = {}  # (namespace, name) -> its aggregation key
        self.history = History(size=size, start_rv=self.rv)
        self.hub = WatchHub()

    def record(self, *, namespace: str, pod: str, uid: str, type_: str, reason: str, message: str,
               component: str = KUBELET, field_path: str | None = None) -> JsonDict:
        """Report an event about a pod; an equal earlier one is counted again instead."""
        now = rfc3339()
        key = (namespace, uid, type_, reason, message, component, field_path or "")
        existing = self._same.get(key)
        old = self.events.get(existing) if existing else None
        self.rv += 1
        if old is not None:
            event = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)},
                     "count": old.get("count", 1) + 1, "lastTimestamp": now}
            kind = MODIFIED
        else:
            involved: JsonDict = {"kind": "Pod", "namespace": namespace, "name": pod, "uid": uid, "apiVersion": "v1"}
            if field_path:
                involved["fieldPath"] = field_path
            event = {
                "kind": "Event", "apiVersion": "v1",
                "metadata": {"name": f"{pod}.{uuid.uuid4().hex[:16]}", "namespace": namespace,
                             "uid": str(uuid.uuid4()), "resourceVersion": str(self.rv), "creationTimestamp": now},
                "involvedObject": involved, "reason": reason, "message": message,
                "source": {"component": component, **({"host": "kubesim-node"} if component == KUBELET else {})},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": type_, "eventTime": None,
                "reportingComponent": component, "reportingInstance": "kubesim-node" if component == KUBELET else "",
            }
            kind = ADDED
        name = (namespace, event["metadata"]["name"])
        self.events[name] = event
        self._same[key] = name
        self._key_of[name] = key
        self._emit(Event(self.rv, kind, namespace, event, orjson.dumps(event), old))
        while len(self.events) > self.size:
            self._expire()
        return event

    def _expire(self) -> None:
        name, event = next(iter(self.events.items()))
        del self.events[name]
        key = self._key_of.pop(name, None)       # one lookup: a full log expires an event per new one
        if key is not None and self._same.get(key) == name:
            del self._same[key]
        self.rv += 1
        gone = {**event, "metadata": {**event["metadata"], "resourceVersion": str(self.rv)}}
        self._emit(Event(self.rv, DELETED, name[0], gone, orjson.dumps(gone), event))

    def _emit(self, event: Event) -> None:
        self.history.append(event)
        self.hub.publish(event)

    def of_pod(self, namespace: str, name: str) -> list[JsonDict]:
        """The events about one pod, oldest first (tests, the admin API)."""
        return [event for event in self.events.values()
                if event["involvedObject"]["namespace"] == namespace and event["involvedObject"]["name"] == name]
