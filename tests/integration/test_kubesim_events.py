"""kubesim's core/v1 Events: what its scheduler and kubelet report about pods, listed and watched
(``sim`` and ``v1`` come from tests/integration/conftest.py)."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, watch

from tests.support import wait_for

NS = "default"
A = "kubesim.podq.io/"


def pod(name: str, outcome: str | None = None, *, volumes: list | None = None) -> dict:
    annotations = {A + "outcome": outcome} if outcome else {}
    spec = {"restartPolicy": "Never", "containers": [{"name": "base", "image": "apache/airflow:3.1.0"}]}
    if volumes:
        spec["volumes"] = volumes
    return {"metadata": {"name": name, "annotations": annotations}, "spec": spec}


def reasons(v1: client.CoreV1Api, name: str) -> list[tuple[str, str, int]]:
    items = v1.list_namespaced_event(NS, field_selector=f"involvedObject.kind=Pod,involvedObject.name={name}").items
    return [(event.type, event.reason, event.count) for event in items]


def test_a_pod_that_runs_is_scheduled_pulled_created_and_started(v1):
    v1.create_namespaced_pod(NS, pod("fine"))
    wait_for(lambda: v1.read_namespaced_pod("fine", NS).status.phase == "Succeeded", timeout=15)
    got = [reason for _, reason, _ in reasons(v1, "fine")]
    assert got == ["Scheduled", "Pulled", "Created", "Started"]
    event = v1.list_namespaced_event(NS, field_selector="involvedObject.name=fine").items[0]
    assert event.source.component == "default-scheduler" and event.involved_object.kind == "Pod"
    assert event.message == f"Successfully assigned {NS}/fine to kubesim-node"


def test_an_unschedulable_pod_gets_failed_scheduling_with_the_schedulers_message(v1):
    v1.create_namespaced_pod(NS, pod("nowhere", "Unschedulable"))
    wait_for(lambda: reasons(v1, "nowhere"), timeout=15)
    event = v1.list_namespaced_event(NS, field_selector="involvedObject.name=nowhere").items[0]
    assert (event.type, event.reason) == ("Warning", "FailedScheduling")
    assert event.message.startswith("0/3 nodes are available")


def test_an_image_that_cannot_be_pulled_reports_each_attempt_counted_not_repeated(v1):
    v1.create_namespaced_pod(NS, pod("nopull", "ErrImagePull"))
    wait_for(lambda: any(reason == "BackOff" and count >= 2 for _, reason, count in reasons(v1, "nopull")),
             timeout=15, message="a second back-off counted on the same event")
    kinds = {(kind, reason) for kind, reason, _ in reasons(v1, "nopull")}
    assert {("Normal", "Pulling"), ("Warning", "Failed"), ("Normal", "BackOff")} <= kinds
    messages = [e.message for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=nopull").items]
    assert "Error: ErrImagePull" in messages and "Error: ImagePullBackOff" in messages


def test_a_missing_config_map_keeps_the_pod_creating_with_failed_mount(v1):
    volumes = [{"name": "airflow-cfg", "configMap": {"name": "airflow-config"}}]
    v1.create_namespaced_pod(NS, pod("nomount", "FailedMount", volumes=volumes))
    wait_for(lambda: ("Warning", "FailedMount") in {(k, r) for k, r, _ in reasons(v1, "nomount")}, timeout=15)
    event = [e for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=nomount").items
             if e.reason == "FailedMount"][0]
    assert event.message == 'MountVolume.SetUp failed for volume "airflow-cfg" : configmap "airflow-config" not found'
    status = v1.read_namespaced_pod("nomount", NS).status
    assert status.phase == "Pending"
    assert status.container_statuses[0].state.waiting.reason == "ContainerCreating"


def test_events_are_watched_from_a_resource_version_with_a_field_selector(v1):
    listed = v1.list_namespaced_event(NS)
    seen: list[tuple[str, str]] = []

    def follow():
        # The server ends the watch after timeoutSeconds; the events come well before.
        for item in watch.Watch().stream(v1.list_namespaced_event, NS, resource_version=listed.metadata.resource_version,
                                         field_selector="involvedObject.kind=Pod,type=Warning", timeout_seconds=3):
            seen.append((item["type"], item["object"].reason))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    v1.create_namespaced_pod(NS, pod("watched", "Unschedulable"))
    v1.create_namespaced_pod(NS, pod("quiet"))
    thread.join(30)
    assert not thread.is_alive()
    assert ("ADDED", "FailedScheduling") in seen
    assert all(reason != "Scheduled" for _, reason in seen)  # Normal events do not match type=Warning


def test_an_unknown_event_field_is_refused(v1):
    with pytest.raises(client.ApiException) as caught:
        v1.list_namespaced_event(NS, field_selector="spec.nodeName=x")
    assert caught.value.status == 400
