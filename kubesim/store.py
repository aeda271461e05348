"""The in-memory object store: pods and namespaces, the cluster-wide revision counter, the create audit log.

Everything here runs on the server's event loop; no locks. Stored pod dicts are never mutated after a write:
a change is a fresh copy, so events and list snapshots can share them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .clock import initial_resource_version, rfc3339
from .history import ADDED, DELETED, MODIFIED, Event, History
from .watchers import WatchHub

JsonDict = dict[str, Any]
Key = tuple[str, str]

POD_PREFIX = b'{"kind":"Pod","apiVersion":"v1",'


class StoreListener(Protocol):
    """Told about pod writes after they happen (the simulated kubelet)."""

    def pod_written(self, event: Event) -> None: ...


@dataclass(slots=True)
class Entry:
    obj: JsonDict
    raw: bytes

    def clone(self) -> JsonDict:
        """A private deep copy of the stored object, to modify and write back."""
        return orjson.loads(self.raw)

    def item_bytes(self) -> bytes:
        """The object as a list item: without kind and apiVersion, as real servers send list items."""
        return b"{" + self.raw[len(POD_PREFIX) :]


def _normalized(obj: JsonDict) -> JsonDict:
    if next(iter(obj), None) == "kind" and list(obj)[1:2] == ["apiVersion"]:
        obj["kind"], obj["apiVersion"] = "Pod", "v1"
        return obj
    rest = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    return {"kind": "Pod", "apiVersion": "v1", **rest}


def _with_resource_version(raw: bytes, obj: JsonDict, *, old_rv: str, new_rv: str) -> bytes:
    """``raw`` (``obj`` serialized with ``old_rv``) with ``new_rv`` instead: the bytes ``orjson.dumps(obj)`` gives.

    A JSON string escapes its quotes, so the pair ``"resourceVersion":"<old_rv>"`` only occurs as a real
    key and value: found once, it is the metadata's and is swapped in place; found more often (a label of
    that name and value, say), the object is serialized again.
    """
    pair = b'"resourceVersion":"' + old_rv.encode() + b'"'
    if raw.count(pair) != 1:
        return orjson.dumps(obj)
    return raw.replace(pair, b'"resourceVersion":"' + new_rv.encode() + b'"')


class Store:
    def __init__(self, *, history_size: int, namespaces: list[str]) -> None:
        self.rv = initial_resource_version()
        self.start_rv = self.rv
        self.pods: dict[Key, Entry] = {}
        # namespace (None: every one) -> its pods' keys in order, kept until a pod is added or removed: a
        # paged list reads it once, not sorted anew for every page (a 100,000-pod relist has 200 pages).
        self._sorted: dict[str | None, list[Key]] = {}
        self.namespaces: dict[str, JsonDict] = {}
        self.history = History(size=history_size, start_rv=self.rv)
        self.hub = WatchHub()
        self.audit: list[JsonDict] = []
        self.listeners: list[StoreListener] = []
        self.writes = 0
        for name in namespaces:
            self.add_namespace(name)

    # -- namespaces -------------------------------------------------------------------------------
    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> JsonDict:
        self.rv += 1
        ns = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(self.rv),
                "creationTimestamp": rfc3339(),
                "labels": {**(labels or {}), "kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self.namespaces[name] = ns
        return ns

    # -- pods ------------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> Entry | None:
        return self.pods.get((namespace, name))

    def sorted_keys(self, namespace: str | None) -> list[Key]:
        """The keys of the pods in ``namespace`` (None: all), sorted as etcd's key order; do not modify."""
        keys = self._sorted.get(namespace)
        if keys is None:
            keys = self._sorted[namespace] = sorted(key for key, _ in self.iter_pods(namespace))
        return keys

    def iter_pods(self, namespace: str | None) -> Iterator[tuple[Key, Entry]]:
        if namespace is None:
            yield from self.pods.items()
        else:
            for key, entry in self.pods.items():
                if key[0] == namespace:
                    yield key, entry

    def _emit(self, event: Event) -> None:
        self.writes += 1
        self.history.append(event)
        self.hub.publish(event)
        for listener in self.listeners:
            listener.pod_written(event)

    def insert(self, obj: JsonDict) -> Entry:
        """Store a new pod (metadata already complete apart from the RV); emits ADDED."""
        self.rv += 1
        obj = _normalized(obj)
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        raw = orjson.dumps(obj)
        entry = Entry(obj, raw)
        key = (meta["namespace"], meta["name"])
        self.pods[key] = entry
        self._sorted.clear()
        self.audit.append(
            {
                "namespace": key[0],
                "name": key[1],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "time": time.time(),
                "creationTimestamp": meta.get("creationTimestamp"),
            }
        )
        self._emit(Event(self.rv, ADDED, key[0], obj, raw, None))
        return entry

    def replace(self, old: Entry, obj: JsonDict) -> Entry:
        """Write ``obj`` over ``old``; a no-op (equal apart from the RV) writes nothing and returns ``old``."""
        obj = _normalized(obj)
        meta = obj["metadata"]
        old_rv = old.obj["metadata"]["resourceVersion"]
        meta["resourceVersion"] = old_rv
        raw = orjson.dumps(obj)
        if raw == old.raw:
            return old  # a no-op takes no RV and emits nothing
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        raw = _with_resource_version(raw, obj, old_rv=old_rv, new_rv=meta["resourceVersion"])
        entry = Entry(obj, raw)
        key = (meta["namespace"], meta["name"])
        self.pods[key] = entry
        self._emit(Event(self.rv, MODIFIED, key[0], obj, raw, old.obj))
        return entry

    def remove(self, entry: Entry) -> Entry:
        """Delete the pod; the DELETED event carries its last state with the deletion's RV."""
        self.rv += 1
        obj = entry.clone()
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        raw = orjson.dumps(obj)
        del self.pods[(meta["namespace"], meta["name"])]
        self._sorted.clear()
        gone = Entry(obj, raw)
        self._emit(Event(self.rv, DELETED, meta["namespace"], obj, raw, entry.obj))
        return gone

    def compact(self) -> int:
        return self.history.compact(self.rv)
