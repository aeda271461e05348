"""kubesim's store: every stored pod's bytes are exactly its object serialized, write after write."""

from __future__ import annotations

import copy

import orjson

from podq.kubesim.store import Store

POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "p", "namespace": "default", "uid": "u-1", "labels": {"app": "a"}},
    "spec": {"containers": [{"name": "base", "image": "busybox:1"}]},
    "status": {"phase": "Pending"},
}


def with_status(obj: dict, **status: object) -> dict:
    new = copy.deepcopy(obj)
    new["status"] = {**new["status"], **status}
    return new


def test_each_write_stores_the_bytes_of_its_object_with_the_new_resource_version() -> None:
    store = Store(history_size=100, namespaces=["default"])
    entry = store.insert(copy.deepcopy(POD))
    for phase in ("Pending", "Running", "Succeeded"):
        written = store.replace(entry, with_status(entry.obj, phase=phase, message=f"now {phase}"))
        assert written is not entry
        assert written.obj["metadata"]["resourceVersion"] == str(store.rv)
        assert written.raw == orjson.dumps(written.obj)
        assert store.history.since(store.rv - 1)[0].raw == written.raw
        entry = written


def test_a_no_op_write_takes_no_resource_version() -> None:
    store = Store(history_size=100, namespaces=["default"])
    entry = store.insert(copy.deepcopy(POD))
    rv = store.rv
    assert store.replace(entry, copy.deepcopy(entry.obj)) is entry
    assert store.rv == rv


def test_a_label_that_looks_like_the_resource_version_is_left_alone() -> None:
    store = Store(history_size=100, namespaces=["default"])
    entry = store.insert(copy.deepcopy(POD))
    rv = entry.obj["metadata"]["resourceVersion"]
    tricky = copy.deepcopy(entry.obj)
    tricky["metadata"]["labels"]["resourceVersion"] = str(int(rv) + 1)  # the RV this write will leave behind
    entry = store.replace(entry, tricky)
    assert entry.obj["metadata"]["labels"]["resourceVersion"] == entry.obj["metadata"]["resourceVersion"]
    written = store.replace(entry, with_status(entry.obj, phase="Running"))
    assert written.raw == orjson.dumps(written.obj)
    assert written.obj["metadata"]["labels"]["resourceVersion"] == str(int(rv) + 1)
    assert orjson.loads(written.raw)["metadata"]["labels"]["resourceVersion"] == str(int(rv) + 1)
    assert orjson.loads(written.raw)["metadata"]["resourceVersion"] == str(store.rv)


def test_the_sorted_keys_a_paged_list_reads_follow_every_insert_and_removal():
    store = Store(history_size=100, namespaces=["default", "other"])

    def pod(namespace: str, name: str) -> dict:
        return {**copy.deepcopy(POD), "metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}"}}

    for namespace, name in (("other", "b"), ("default", "c"), ("default", "a")):
        store.insert(pod(namespace, name))
    assert store.sorted_keys(None) == [("default", "a"), ("default", "c"), ("other", "b")]
    assert store.sorted_keys("default") is store.sorted_keys("default") == [("default", "a"), ("default", "c")]
    store.insert(pod("default", "b"))
    assert store.sorted_keys("default") == [("default", "a"), ("default", "b"), ("default", "c")]
    store.remove(store.get("default", "a"))
    assert store.sorted_keys(None) == [("default", "b"), ("default", "c"), ("other", "b")]
