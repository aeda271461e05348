"""kubesim fault injection, seen from the official client."""

from __future__ import annotations

import json
import time

import pytest
import urllib3
from kubernetes import client, config, watch

from podq.kubesim.server import KubeSim
from podq.kubesim.testing import running_kubesim, wait_for

NS = "default"


def pod(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1"}]}}


def test_watch_after_compaction_with_timeout_raises_410(sim: KubeSim, v1: client.CoreV1Api) -> None:
    old = v1.create_namespaced_pod(NS, pod("a")).metadata.resource_version
    v1.create_namespaced_pod(NS, pod("b"))
    sim.admin().compact()
    with pytest.raises(client.ApiException) as info:
        for _event in watch.Watch().stream(v1.list_namespaced_pod, NS, resource_version=old, timeout_seconds=5):
            pass
    assert info.value.status == 410
    assert "too old resource version" in str(info.value.reason)
    assert sim.admin().stats()["requests"]["watch"] == 1


def test_watch_after_compaction_without_timeout_retries_once_then_raises(sim: KubeSim, v1: client.CoreV1Api) -> None:
    old = v1.create_namespaced_pod(NS, pod("a")).metadata.resource_version
    v1.create_namespaced_pod(NS, pod("b"))
    sim.admin().compact()
    with pytest.raises(client.ApiException) as info:
        for _event in watch.Watch().stream(v1.list_namespaced_pod, NS, resource_version=old):
            pass
    assert info.value.status == 410
    assert sim.admin().stats()["requests"]["watch"] == 2


def test_raw_error_event_shape_after_compaction(sim: KubeSim, v1: client.CoreV1Api) -> None:
    old = v1.create_namespaced_pod(NS, pod("a")).metadata.resource_version
    v1.create_namespaced_pod(NS, pod("b"))
    compacted = sim.admin().compact()
    response = v1.list_namespaced_pod(NS, watch=True, resource_version=old, _preload_content=False)
    assert response.status == 200
    lines = response.data.decode().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"] == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {old} ({compacted + 1})",
        "reason": "Expired",
        "code": 410,
    }


def test_bounded_history_expires_old_resource_versions(sim: KubeSim, v1: client.CoreV1Api) -> None:
    admin = sim.admin()
    admin.pause_kubelet()
    admin.set_history_size(1)
    first = v1.create_namespaced_pod(NS, pod("p0")).metadata.resource_version
    for i in range(1, 80):
        v1.create_namespaced_pod(NS, pod(f"p{i}"))
    with pytest.raises(client.ApiException) as info:
        for _event in watch.Watch().stream(v1.list_namespaced_pod, NS, resource_version=first, timeout_seconds=2):
            pass
    assert info.value.status == 410


def test_direct_http_410_on_watch(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().watch_gone(True)
    with pytest.raises(client.ApiException) as info:
        next(iter(watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=5)))
    assert info.value.status == 410
    sim.admin().watch_gone(False)
    assert list(watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=1)) == []


def test_error_event_500_raises_from_the_stream(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().add_fault(action="error-event-500", verb="watch", count=1)
    with pytest.raises(client.ApiException) as info:
        for _event in watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=5):
            pass
    assert info.value.status == 500


def test_429_carries_retry_after(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().add_fault(action="429", verb="create", count=1, retry_after=3)
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod(NS, pod("a"))
    assert info.value.status == 429
    assert info.value.headers["Retry-After"] == "3"
    assert json.loads(info.value.body)["details"]["retryAfterSeconds"] == 3
    assert v1.create_namespaced_pod(NS, pod("a")).metadata.name == "a"  # count=1: the next one passes
    assert [c["name"] for c in sim.admin().creates()] == ["a"]


@pytest.mark.parametrize("code", ["500", "503"])
def test_server_errors(sim: KubeSim, v1: client.CoreV1Api, code: str) -> None:
    sim.admin().add_fault(action=code, verb="get", retry_after=0)  # urllib3 itself retries GET on 503 + Retry-After
    with pytest.raises(client.ApiException) as info:
        v1.read_namespaced_pod("x", NS)
    assert info.value.status == int(code)


def test_403_by_namespace_rule(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().add_fault(action="403", namespace="podq")
    with pytest.raises(client.ApiException) as info:
        v1.create_namespaced_pod("podq", pod("a"))
    assert info.value.status == 403 and json.loads(info.value.body)["reason"] == "Forbidden"
    assert v1.create_namespaced_pod(NS, pod("a")).metadata.name == "a"


def test_fault_rate_applies_to_a_fraction(sim: KubeSim, v1: client.CoreV1Api) -> None:
    rule = sim.admin().add_fault(action="500", verb="list", rate=0.5)
    failures = 0
    for _ in range(60):
        try:
            v1.list_namespaced_pod(NS)
        except client.ApiException:
            failures += 1
    assert 5 < failures < 55
    assert next(r for r in sim.admin().faults() if r["id"] == rule)["fired"] == failures


def test_hung_create_times_out_on_client_but_is_stored(sim: KubeSim, v1: client.CoreV1Api) -> None:
    admin = sim.admin()
    admin.hang_creates(count=1)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        v1.create_namespaced_pod(NS, pod("ambiguous"), _request_timeout=0.5)
    assert [c["name"] for c in admin.creates()] == ["ambiguous"]
    assert v1.read_namespaced_pod("ambiguous", NS).metadata.name == "ambiguous"
    # the client gave up and closed its connection, which ends the hung handler on the server too
    wait_for(lambda: admin.stats()["hungRequests"] == 0, what="hung handler gone with its client")
    admin.release_hung()


def test_connection_reset(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().add_fault(action="reset", verb="create")
    with pytest.raises(urllib3.exceptions.HTTPError):
        v1.create_namespaced_pod(NS, pod("a"))
    assert sim.admin().creates() == []
    sim.admin().clear_faults()
    sim.admin().add_fault(action="reset-after", verb="create", count=1)
    with pytest.raises(urllib3.exceptions.HTTPError):
        v1.create_namespaced_pod(NS, pod("b"))
    assert [c["name"] for c in sim.admin().creates()] == ["b"]


def test_latency_per_verb(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.admin().set_latency("list", seconds=0.2, jitter=0.05)
    started = time.monotonic()
    v1.list_namespaced_pod(NS)
    assert 0.2 <= time.monotonic() - started < 2
    started = time.monotonic()
    v1.list_namespace()  # other verbs and resources are not delayed
    assert time.monotonic() - started < 0.2
    sim.admin().clear_latency()


def test_create_latency_holds_every_one_of_many_concurrent_creates(sim: KubeSim, v1: client.CoreV1Api) -> None:
    import concurrent.futures

    sim.admin().set_latency("create", seconds=0.3)

    def create(index: int) -> float:
        time.sleep(index * 0.02)  # arrivals spread over the hold, so each one comes while others are held
        started = time.monotonic()
        v1.create_namespaced_pod(NS, pod(f"held-{index}"))
        return time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        took = list(pool.map(create, range(24)))
    assert min(took) >= 0.3, took
    assert sim.admin().create_count(name_prefix="held-") == 24
    sim.admin().clear_latency()


def test_a_new_create_latency_applies_to_creates_arriving_after_it(sim: KubeSim, v1: client.CoreV1Api) -> None:
    import threading

    admin = sim.admin()
    admin.set_latency("create", seconds=3.0)
    finished: list[str] = []
    slow = threading.Thread(target=lambda: finished.append(v1.create_namespaced_pod(NS, pod("slow")).metadata.name))
    slow.start()
    wait_for(lambda: admin.stats()["inFlight"] == 1, what="the slow create held")
    admin.set_latency("create", seconds=0.05)
    started = time.monotonic()
    finished.append(v1.create_namespaced_pod(NS, pod("quick")).metadata.name)  # not queued behind the slow one
    assert time.monotonic() - started >= 0.05
    slow.join(10)
    assert finished == ["quick", "slow"]
    admin.clear_latency()


def test_a_held_create_whose_client_left_does_not_hold_up_the_others(sim: KubeSim, v1: client.CoreV1Api) -> None:
    admin = sim.admin()
    admin.set_latency("create", seconds=0.3)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        v1.create_namespaced_pod(NS, pod("gave-up"), _request_timeout=0.1)
    v1.create_namespaced_pod(NS, pod("next"))
    wait_for(lambda: admin.stats()["inFlight"] == 0, what="no request left in flight")
    admin.clear_latency()
    assert v1.read_namespaced_pod("next", NS).metadata.name == "next"


def test_close_all_watches_ends_streams_cleanly(sim: KubeSim, v1: client.CoreV1Api) -> None:
    import threading

    admin = sim.admin()
    ended = threading.Event()

    def run() -> None:
        for _event in watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=30):
            pass
        ended.set()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: admin.stats()["watches"] == 1, what="watch open")
    assert admin.close_watches() == 1
    assert ended.wait(5)
    thread.join(5)


def test_set_pod_status_directly(sim: KubeSim, v1: client.CoreV1Api) -> None:
    admin = sim.admin()
    created = v1.create_namespaced_pod(NS, pod("p"))
    out = admin.set_pod_status(NS, "p", status={"phase": "Failed", "reason": "Evicted", "message": "by hand", "qosClass": "BestEffort"})
    assert out["status"]["reason"] == "Evicted"
    assert int(out["metadata"]["resourceVersion"]) > int(created.metadata.resource_version)
    assert v1.read_namespaced_pod("p", NS).status.reason == "Evicted"


def test_restart_never_reuses_resource_versions(sim: KubeSim, v1: client.CoreV1Api) -> None:
    last = int(v1.create_namespaced_pod(NS, pod("p")).metadata.resource_version)
    with running_kubesim() as second:
        api_client = config.new_client_from_config(config_file=second.kubeconfig)
        v2 = client.CoreV1Api(api_client)
        assert int(v2.list_namespaced_pod(NS).metadata.resource_version) > last
        with pytest.raises(client.ApiException) as info:
            for _event in watch.Watch().stream(v2.list_namespaced_pod, NS, resource_version=str(last), timeout_seconds=2):
                pass
        assert info.value.status == 410
        api_client.close()


def test_abrupt_close_of_watches_is_a_protocol_error(sim: KubeSim, v1: client.CoreV1Api) -> None:
    import threading

    admin = sim.admin()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _event in watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=30):
                pass
        except Exception as exc:  # noqa: BLE001 - the point of the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: admin.stats()["watches"] == 1, what="watch open")
    assert admin.close_watches(abrupt=True) == 1
    thread.join(5)
    assert len(errors) == 1 and isinstance(errors[0], urllib3.exceptions.HTTPError)


def test_hung_watch_and_release(sim: KubeSim, v1: client.CoreV1Api) -> None:
    import threading

    admin = sim.admin()
    admin.add_fault(action="hang", verb="watch", count=1)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            list(watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=30))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: admin.stats()["hungRequests"] == 1, what="watch hung before its headers")
    assert admin.stats()["watches"] == 0
    assert admin.release_hung() == 1
    # the reset GET is retried by urllib3 on a fresh connection, and that watch is served
    wait_for(lambda: admin.stats()["watches"] == 1, what="retried watch open")
    assert admin.close_watches() == 1
    thread.join(5)
    assert errors == [] and admin.stats()["requests"]["watch"] == 2


def test_in_flight_counts_requests_being_handled(sim: KubeSim, v1: client.CoreV1Api) -> None:
    import threading

    admin = sim.admin()
    admin.set_latency("create", seconds=1.0)
    thread = threading.Thread(target=lambda: v1.create_namespaced_pod(NS, pod("slow")))
    thread.start()
    wait_for(lambda: admin.stats()["inFlight"] == 1, what="the delayed create in flight")
    thread.join(5)
    assert admin.stats()["inFlight"] == 0
