"""kubesim seen from the official client: create/get/list/watch/patch/delete, Status errors, selectors, audit log."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, watch

from podq.kubesim.admin import Admin
from podq.kubesim.server import KubeSim
from podq.kubesim.testing import wait_for

NS = "default"


def pod(name: str = "", *, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None, **spec: object) -> dict:
    meta: dict[str, object] = {"name": name} if name else {"generateName": "gen-"}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "apache/airflow:3.1.0"}], **spec},
    }


def status_body(exc: client.ApiException) -> dict:
    return json.loads(exc.body)


def test_create_returns_server_fields_and_duplicate_is_409(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_pod(NS, pod("p1"))
    assert created.metadata.uid and int(created.metadata.resource_version) > 0
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1
    assert created.status.phase == "Pending" and created.status.qos_class == "BestEffort"
    assert created.spec.containers[0].image_pull_policy == "IfNotPresent"
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, pod("p1"))
    assert info.value.status == 409
    body = status_body(info.value)
    assert body["reason"] == "AlreadyExists" and body["details"] == {"name": "p1", "kind": "pods"}
    assert body["message"] == 'pods "p1" already exists'


def test_generate_name_gives_unique_names(v1: client.CoreV1Api) -> None:
    names = {v1.create_namespaced_pod(NS, pod()).metadata.name for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith("gen-") and len(n) == 9 for n in names)


def test_validation_errors(v1: client.CoreV1Api) -> None:
    bad = pod("Bad_Name")
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, bad)
    assert info.value.status == 422
    body = status_body(info.value)
    assert body["reason"] == "Invalid" and body["details"]["causes"][0]["field"] == "metadata.name"
    no_containers = pod("ok")
    no_containers["spec"]["containers"] = []
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, no_containers)
    assert status_body(info.value)["message"] == 'Pod "ok" is invalid: spec.containers: Required value'
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod("nowhere", pod("x"))
    assert info.value.status == 404 and status_body(info.value)["message"] == 'namespaces "nowhere" not found'
    mismatch = pod("x")
    mismatch["metadata"]["namespace"] = "other"
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, mismatch)
    assert info.value.status == 400


def test_requests_above_limits_are_422_as_the_api_server_answers(v1: client.CoreV1Api) -> None:
    over = pod("over")
    over["spec"]["containers"][0]["resources"] = {"requests": {"memory": "256Mi", "cpu": "100m"},
                                                  "limits": {"memory": "128Mi", "cpu": "1"}}
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, over)
    assert info.value.status == 422
    body = status_body(info.value)
    assert body["reason"] == "Invalid" and body["details"]["name"] == "over"
    cause = {"reason": "FieldValueInvalid", "field": "spec.containers[0].resources.requests",
             "message": 'Invalid value: "256Mi": must be less than or equal to memory limit of 128Mi'}
    assert body["details"]["causes"] == [cause]
    assert body["message"] == f'Pod "over" is invalid: {cause["field"]}: {cause["message"]}'
    gpu = pod("gpu")  # an extended resource cannot be overcommitted at all
    gpu["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1"},
                                                 "limits": {"example.com/gpu": "2"}}
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, gpu)
    assert "must be equal to example.com/gpu limit of 2" in status_body(info.value)["message"]
    within = pod("within")  # equal amounts in other units pass; a limit alone gives the request
    within["spec"]["containers"][0]["resources"] = {"requests": {"memory": "1024Mi"},
                                                    "limits": {"memory": "1Gi", "cpu": "500m"}}
    created = v1.create_namespaced_pod(NS, within)
    assert created.spec.containers[0].resources.requests == {"memory": "1024Mi", "cpu": "500m"}


def test_get_missing_is_404(v1: client.CoreV1Api) -> None:
    for call in (lambda: v1.read_namespaced_pod("nope", NS), lambda: v1.delete_namespaced_pod("nope", NS)):
        with pytest.raises(client.ApiException) as info:
            call()
        assert str(info.value.status) == "404"
        assert status_body(info.value)["reason"] == "NotFound"


def test_list_rv_is_global_and_items_have_no_kind(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    v1.create_namespaced_pod(NS, pod("a"))
    v1.create_namespaced_pod("podq", pod("b"))
    raw = v1.list_namespaced_pod(NS, _preload_content=False)
    body = json.loads(raw.data)
    assert body["kind"] == "PodList"
    assert body["metadata"]["resourceVersion"] == str(sim.admin().resource_version())
    assert [i["metadata"]["name"] for i in body["items"]] == ["a"]
    assert "kind" not in body["items"][0] and "apiVersion" not in body["items"][0]
    assert {p.metadata.name for p in v1.list_pod_for_all_namespaces().items} == {"a", "b"}


def test_selectors_on_list(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    v1.create_namespaced_pod(NS, pod("w1", labels={"airflow-worker": "1"}))
    v1.create_namespaced_pod(NS, pod("w2", labels={"airflow-worker": "1", "airflow_executor_done": "True"}))
    v1.create_namespaced_pod(NS, pod("w3", labels={"airflow-worker": "2"}))

    def names(**kw: str) -> list[str]:
        return sorted(p.metadata.name for p in v1.list_namespaced_pod(NS, **kw).items)

    assert names(label_selector="airflow-worker=1,airflow_executor_done!=True") == ["w1"]
    assert names(label_selector="airflow-worker notin (2)") == ["w1", "w2"]
    assert names(label_selector="airflow-worker in (2)") == ["w3"]
    assert names(label_selector="!airflow_executor_done") == ["w1", "w3"]
    assert names(field_selector="status.phase!=Succeeded,metadata.name=w2") == ["w2"]
    with pytest.raises(client.ApiException) as info:
        v1.list_namespaced_pod(NS, field_selector="spec.foo=1")
    assert info.value.status == 400 and status_body(info.value)["message"] == "field label not supported: spec.foo"
    with pytest.raises(client.ApiException) as info:
        v1.list_namespaced_pod(NS, label_selector="a in b")
    assert info.value.status == 400


def test_paging_with_limit_and_continue(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    for i in range(5):
        v1.create_namespaced_pod(NS, pod(f"p{i}"))
    first = v1.list_namespaced_pod(NS, limit=2)
    assert [p.metadata.name for p in first.items] == ["p0", "p1"]
    assert first.metadata.remaining_item_count == 3
    second = v1.list_namespaced_pod(NS, limit=2, _continue=first.metadata._continue)
    third = v1.list_namespaced_pod(NS, limit=2, _continue=second.metadata._continue)
    assert [p.metadata.name for p in second.items + third.items] == ["p2", "p3", "p4"]
    assert third.metadata._continue is None
    v1.create_namespaced_pod(NS, pod("late"))
    sim.admin().compact()
    with pytest.raises(client.ApiException) as info:
        v1.list_namespaced_pod(NS, limit=2, _continue=first.metadata._continue)
    assert info.value.status == 410 and status_body(info.value)["reason"] == "Expired"


def test_list_resource_version_rules(sim: KubeSim, v1: client.CoreV1Api) -> None:
    rv = sim.admin().resource_version()
    with pytest.raises(client.ApiException) as info:
        v1.list_namespaced_pod(NS, resource_version=str(rv + 100))
    assert info.value.status == 504
    with pytest.raises(client.ApiException) as info:
        v1.list_namespaced_pod(NS, resource_version_match="NotOlderThan")
    assert info.value.status == 422
    with pytest.raises(client.ApiException) as info:
        v1.list_namespaced_pod(NS, resource_version="0", resource_version_match="Exact")
    assert info.value.status == 422
    assert v1.list_namespaced_pod(NS, resource_version="0").metadata.resource_version == str(rv)


def collect(v1: client.CoreV1Api, *, stop_after: int, **kw: object) -> list[tuple[str, str]]:
    w = watch.Watch()
    seen: list[tuple[str, str]] = []
    for event in w.stream(v1.list_namespaced_pod, NS, **kw):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) >= stop_after:
            w.stop()
    return seen


def test_watch_from_zero_gives_synthetic_added_then_exact_rv_gives_later_events(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    v1.create_namespaced_pod(NS, pod("a"))
    mid = v1.create_namespaced_pod(NS, pod("b")).metadata.resource_version
    v1.create_namespaced_pod(NS, pod("c"))
    assert sorted(collect(v1, stop_after=3, resource_version="0", timeout_seconds=5)) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert collect(v1, stop_after=3, timeout_seconds=1) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert collect(v1, stop_after=1, resource_version=mid, timeout_seconds=5) == [("ADDED", "c")]


def test_label_change_moves_pod_in_and_out_of_a_watch(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    start = v1.create_namespaced_pod(NS, pod("p", labels={"done": "False"})).metadata.resource_version
    v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"done": "True"}}})
    v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"done": "True"}}})  # no-op: no event
    v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"done": "again"}}})
    w = watch.Watch()
    events = []
    for event in w.stream(v1.list_namespaced_pod, NS, label_selector="done!=True", resource_version=start, timeout_seconds=1):
        events.append((event["type"], event["object"].metadata.labels["done"], event["object"].metadata.resource_version))
    assert [e[:2] for e in events] == [("DELETED", "False"), ("ADDED", "again")]
    assert int(events[0][2]) > int(start)  # the departed object carries the event's RV


def test_watch_timeout_closes_idle_stream(v1: client.CoreV1Api) -> None:
    import time

    started = time.monotonic()
    assert collect(v1, stop_after=1, timeout_seconds=1) == []
    assert 0.9 <= time.monotonic() - started < 5


def test_bookmarks_advance_watch_rv(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().set_bookmark_interval(0.05)
    rv = sim.admin().resource_version()
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, NS, resource_version=str(rv), allow_watch_bookmarks=True, timeout_seconds=5):
        assert event["type"] == "BOOKMARK"
        assert isinstance(event["object"], dict)
        assert int(event["object"]["metadata"]["resourceVersion"]) >= rv
        w.stop()
    assert int(w.resource_version) >= rv


def test_watch_stop_and_disconnect_leave_server_healthy(sim: KubeSim, v1: client.CoreV1Api) -> None:
    admin = sim.admin()
    w = watch.Watch()
    got: list[str] = []

    def run() -> None:
        for event in w.stream(v1.list_namespaced_pod, NS, timeout_seconds=30):
            got.append(event["type"])
            w.stop()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: admin.stats()["watches"] == 1, what="watch registered")
    v1.create_namespaced_pod(NS, pod("x"))
    thread.join(10)
    assert got == ["ADDED"]
    wait_for(lambda: admin.stats()["watches"] == 0, what="stopped watch removed")
    # a client that vanishes mid-stream (socket closed under it)
    response = v1.list_namespaced_pod(NS, watch=True, _preload_content=False, timeout_seconds=30)
    wait_for(lambda: admin.stats()["watches"] == 1, what="raw watch registered")
    response.shutdown()
    response.close()
    wait_for(lambda: admin.stats()["watches"] == 0, what="dropped watch removed")
    assert v1.read_namespaced_pod("x", NS).metadata.name == "x"


def test_patch_types_and_status_is_ignored_on_main_resource(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    v1.create_namespaced_pod(NS, pod("p", labels={"a": "1"}))
    out = v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"b": "2"}}, "status": {"phase": "Failed"}})
    assert out.metadata.labels == {"a": "1", "b": "2"} and out.status.phase == "Pending"
    out = v1.patch_namespaced_pod("p", NS, [{"op": "replace", "path": "/metadata/labels/a", "value": "9"}])
    assert out.metadata.labels == {"a": "9", "b": "2"}
    out = v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"a": None}}}, _content_type="application/merge-patch+json")
    assert out.metadata.labels == {"b": "2"}
    out = v1.patch_namespaced_pod_status("p", NS, {"status": {"phase": "Running"}, "metadata": {"labels": {"c": "3"}}})
    assert out.status.phase == "Running" and out.metadata.labels == {"b": "2"}
    with pytest.raises(client.ApiException) as info:
        v1.patch_namespaced_pod("p", NS, {"spec": {"restartPolicy": "Always"}})
    assert info.value.status == 422


def test_replace_with_stale_rv_is_conflict(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    created = v1.create_namespaced_pod(NS, pod("p"))
    v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"x": "1"}}})
    with pytest.raises(client.ApiException) as info:
        v1.replace_namespaced_pod("p", NS, created)
    assert info.value.status == 409 and status_body(info.value)["reason"] == "Conflict"


def test_delete_pending_pod_is_immediate(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    start = v1.create_namespaced_pod(NS, pod("p")).metadata.resource_version
    deleted = v1.delete_namespaced_pod("p", NS)
    assert deleted.kind == "Pod" and deleted.metadata.deletion_timestamp is not None
    events = collect(v1, stop_after=2, resource_version=start, timeout_seconds=2)
    assert events == [("MODIFIED", "p"), ("DELETED", "p")]


def test_delete_running_pod_is_graceful(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod(NS, pod("p", annotations={"kubesim.podq.io/run-seconds": "60"}))
    wait_for(lambda: v1.read_namespaced_pod("p", NS).status.phase == "Running", what="Running")
    start = v1.read_namespaced_pod("p", NS).metadata.resource_version
    deleted = v1.delete_namespaced_pod("p", NS)
    assert deleted.metadata.deletion_grace_period_seconds == 30
    w = watch.Watch()
    seen = []
    for event in w.stream(v1.list_namespaced_pod, NS, resource_version=start, timeout_seconds=5):
        obj = event["object"]
        seen.append((event["type"], obj.status.phase, obj.metadata.deletion_grace_period_seconds))
        if event["type"] == "DELETED":
            w.stop()
    assert seen[0] == ("MODIFIED", "Running", 30)
    assert ("MODIFIED", "Failed", 30) in seen  # containers killed
    assert seen[-2:] == [("MODIFIED", "Failed", 0), ("DELETED", "Failed", 0)]


def test_delete_preconditions(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().pause_kubelet()
    v1.create_namespaced_pod(NS, pod("p"))
    with pytest.raises(client.ApiException) as info:
        v1.delete_namespaced_pod("p", NS, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="other")))
    assert info.value.status == 409


def test_audit_log_counts_every_create(sim: KubeSim, v1: client.CoreV1Api) -> None:
    admin: Admin = sim.admin()
    for _ in range(3):
        v1.create_namespaced_pod(NS, pod("same"))
        v1.delete_namespaced_pod("same", NS, grace_period_seconds=0)
        wait_for(lambda: not v1.list_namespaced_pod(NS).items, what="pod gone")
    creates = admin.creates(namespace=NS)
    assert [c["name"] for c in creates] == ["same"] * 3
    assert len({c["uid"] for c in creates}) == 3


def test_discovery_and_namespaces(v1: client.CoreV1Api, sim: KubeSim) -> None:
    api_client = v1.api_client
    assert client.VersionApi(api_client).get_code().major == "1"
    resources = client.CoreV1Api(api_client).get_api_resources()
    assert any(r.name == "pods" and r.kind == "Pod" for r in resources.resources)
    names = {n.metadata.name for n in v1.list_namespace().items}
    assert {"default", "podq"} <= names
    v1.create_namespace({"metadata": {"name": "extra"}})
    v1.create_namespaced_pod("extra", pod("p"))


def test_bookmark_comes_about_two_seconds_before_the_deadline(v1: client.CoreV1Api) -> None:
    import time

    started = time.monotonic()
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, NS, allow_watch_bookmarks=True, timeout_seconds=5):
        assert event["type"] == "BOOKMARK"
        w.stop()
    assert 2.5 <= time.monotonic() - started < 4.0
