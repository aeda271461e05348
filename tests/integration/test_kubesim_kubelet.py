"""The simulated kubelet: each outcome annotation produces the status shapes of pod-status-samples.json."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from podq.kubesim.server import KubeSim
from podq.kubesim.testing import fast_settings, running_kubesim
from tests.support import core_v1, pod_status_samples

NS = "default"
IMAGE = "apache/airflow:3.1.0"
SAMPLES: dict[str, Any] = pod_status_samples()
A = "kubesim.podq.io/"


@pytest.fixture(scope="module")
def sim() -> Iterator[KubeSim]:
    with running_kubesim() as server:
        yield server


@pytest.fixture(scope="module")
def v1(sim: KubeSim) -> Iterator[client.CoreV1Api]:
    with core_v1(sim.kubeconfig) as api:
        yield api


def normalize(status: dict[str, Any]) -> dict[str, Any]:
    """Blank out what differs run to run: times, IPs, container ids, digests."""
    status = copy.deepcopy(status)
    for key in ("startTime",):
        if key in status:
            status[key] = "T"
    if "podIP" in status:
        status["podIP"] = "POD_IP"
        status["podIPs"] = [{"ip": "POD_IP"}]
    for cond in status.get("conditions") or []:
        cond["lastTransitionTime"] = "T"
    for field in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(field) or []:
            if cs.get("containerID"):
                cs["containerID"] = "CID"
            if cs.get("imageID"):
                cs["imageID"] = "IMG"
            for state in list(cs["state"].values()) + list(cs["lastState"].values()):
                for key in ("startedAt", "finishedAt"):
                    if key in state:
                        state[key] = "T"
                if "containerID" in state:
                    state["containerID"] = "CID"
    return status


def torn_down(status: dict[str, Any]) -> bool:
    return status["phase"] in ("Succeeded", "Failed") and any(
        c["type"] == "PodReadyToStartContainers" and c["status"] == "False" for c in status.get("conditions") or []
    )


def run_pod(v1: client.CoreV1Api, name: str, *, annotations: dict[str, str], init: bool = False, spec: dict | None = None,
            until: str = "", stop: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Create a pod and collect the raw status of every event until one normalizes equal to sample ``until``
    (or ``stop(status)`` holds)."""
    body: dict[str, Any] = {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": IMAGE}], **(spec or {})},
    }
    if init:
        body["spec"]["initContainers"] = [{"name": "init", "image": IMAGE}]
    created = v1.create_namespaced_pod(NS, body)
    statuses = [created.to_dict() and v1.api_client.sanitize_for_serialization(created)["status"]]
    target = normalize(SAMPLES[until]) if until in SAMPLES else None
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, NS, field_selector=f"metadata.name={name}",
                          resource_version=created.metadata.resource_version, timeout_seconds=int(timeout)):
        assert isinstance(event["object"], client.V1Pod)  # deserialized by the strict 37.x models
        status = event["raw_object"]["status"]
        statuses.append(status)
        if (target is not None and normalize(status) == target) or (stop is not None and stop(status)):
            w.stop()
    return statuses


def assert_seen(statuses: list[dict[str, Any]], *samples: str) -> None:
    normalized = [normalize(s) for s in statuses]
    for sample in samples:
        assert normalize(SAMPLES[sample]) in normalized, f"no status matched sample {sample!r}; saw {json.dumps(normalized[-3:], indent=1)}"


def test_success_sequence(v1: client.CoreV1Api) -> None:
    statuses = run_pod(v1, "ok", annotations={A + "run-seconds": "0.05"}, until="succeeded")
    assert statuses[0] == SAMPLES["created"]
    assert_seen(statuses, "created", "container_creating", "running", "succeeded")
    phases = [s["phase"] for s in statuses]
    assert phases.index("Running") < phases.index("Succeeded")


def test_exit_code_fails(v1: client.CoreV1Api) -> None:
    assert_seen(run_pod(v1, "err", annotations={A + "exit-code": "1"}, until="failed_error"), "running", "failed_error")


def test_oom_killed(v1: client.CoreV1Api) -> None:
    assert_seen(run_pod(v1, "oom", annotations={A + "outcome": "OOMKilled"}, until="failed_oom"), "failed_oom")


@pytest.mark.parametrize(
    ("outcome", "sample"),
    [
        ("ErrImagePull", "err_image_pull"),
        ("CreateContainerConfigError", "create_container_config_error"),
        ("InvalidImageName", "invalid_image_name"),
    ],
)
def test_waiting_errors(v1: client.CoreV1Api, outcome: str, sample: str) -> None:
    message = SAMPLES[sample]["containerStatuses"][0]["state"]["waiting"]["message"]
    name = outcome.lower()
    statuses = run_pod(v1, name, annotations={A + "outcome": outcome, A + "message": message}, until=sample)
    assert_seen(statuses, sample)
    v1.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_image_pull_back_off_alternates(v1: client.CoreV1Api) -> None:
    expected = copy.deepcopy(SAMPLES["image_pull_backoff"])
    expected["containerStatuses"][0]["state"]["waiting"]["message"] = f'Back-off pulling image "{IMAGE}"'
    SAMPLES["_backoff"] = expected
    statuses = run_pod(v1, "backoff", annotations={A + "outcome": "ImagePullBackOff"}, until="_backoff")
    reasons = [s["containerStatuses"][0]["state"]["waiting"]["reason"] for s in statuses if s.get("containerStatuses")]
    assert "ErrImagePull" in reasons and reasons[-1] == "ImagePullBackOff"
    v1.delete_namespaced_pod("backoff", NS)


def test_pull_qps_exceeded_once_then_runs(v1: client.CoreV1Api) -> None:
    statuses = run_pod(v1, "qps", annotations={A + "outcome": "PullQPSExceeded"}, until="succeeded")
    assert_seen(statuses, "pull_qps", "running", "succeeded")


def test_init_container_running_then_failed(v1: client.CoreV1Api) -> None:
    statuses = run_pod(v1, "initfail", annotations={A + "outcome": "InitFailed"}, init=True, until="init_failed")
    assert_seen(statuses, "init_running", "init_failed")


def test_init_container_success_then_main_runs(v1: client.CoreV1Api) -> None:
    statuses = run_pod(v1, "initok", annotations={}, init=True, stop=torn_down)
    final = statuses[-1]
    assert final["phase"] == "Succeeded"
    init = final["initContainerStatuses"][0]["state"]["terminated"]
    assert init["exitCode"] == 0 and init["reason"] == "Completed"


def test_provider_failed(v1: client.CoreV1Api) -> None:
    assert_seen(run_pod(v1, "provider", annotations={A + "outcome": "ProviderFailed"}, until="provider_failed"), "provider_failed")


def test_evicted(v1: client.CoreV1Api) -> None:
    assert_seen(run_pod(v1, "evicted", annotations={A + "outcome": "Evicted"}, until="evicted"), "evicted")


def test_unschedulable(v1: client.CoreV1Api) -> None:
    statuses = run_pod(v1, "unsched", annotations={A + "outcome": "Unschedulable"}, until="unschedulable")
    assert_seen(statuses, "unschedulable")
    pod = v1.read_namespaced_pod("unsched", NS)
    assert pod.spec.node_name is None
    v1.delete_namespaced_pod("unsched", NS)  # unscheduled: immediate


@pytest.mark.parametrize("how", ["annotation", "activeDeadlineSeconds"])
def test_deadline_exceeded(v1: client.CoreV1Api, how: str) -> None:
    name = f"deadline-{how.lower()}"
    if how == "annotation":
        statuses = run_pod(v1, name, annotations={A + "outcome": "DeadlineExceeded"}, stop=torn_down)
    else:
        statuses = run_pod(v1, name, annotations={A + "run-seconds": "60"}, spec={"activeDeadlineSeconds": 1}, stop=torn_down)
    final = [s for s in statuses if s.get("reason") == "DeadlineExceeded"]
    assert final, statuses[-1]
    assert final[-1]["phase"] == "Failed"
    assert final[-1]["message"] == "Pod was active on the node longer than the specified deadline"


def test_crash_loop_back_off_with_restart_policy_always(v1: client.CoreV1Api) -> None:
    statuses = run_pod(v1, "crash", annotations={A + "exit-code": "2"}, spec={"restartPolicy": "Always"},
                       stop=lambda s: s.get("containerStatuses", [{}])[0].get("restartCount", 0) >= 1)
    waiting = [s["containerStatuses"][0] for s in statuses if "waiting" in (s.get("containerStatuses") or [{}])[0].get("state", {})]
    crash = [cs for cs in waiting if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"]
    assert crash and crash[0]["restartCount"] == 1
    assert crash[0]["lastState"]["terminated"]["exitCode"] == 2
    assert "back-off 10s restarting failed container=base pod=crash_default(" in crash[0]["state"]["waiting"]["message"]
    v1.delete_namespaced_pod("crash", NS, grace_period_seconds=0)


def test_pause_and_resume_kubelet(sim: KubeSim, v1: client.CoreV1Api) -> None:
    admin = sim.admin()
    admin.pause_kubelet()
    try:
        v1.create_namespaced_pod(NS, {"metadata": {"name": "paused"}, "spec": {"containers": [{"name": "base", "image": IMAGE}]}})
        before = admin.resource_version()
        assert v1.read_namespaced_pod("paused", NS).status.to_dict()["phase"] == "Pending"
        assert admin.resource_version() == before
    finally:
        admin.resume_kubelet()
    statuses = run_pod(v1, "after-pause", annotations={}, until="succeeded")
    assert statuses[-1]["phase"] == "Succeeded"


# -- a paused kubelet: pods created meanwhile wait, then live in full after the resume --------------------


@pytest.fixture
def paused() -> Iterator[tuple[KubeSim, client.CoreV1Api]]:
    with running_kubesim(fast_settings(kubelet_paused=True)) as sim, core_v1(sim.kubeconfig) as v1:
        yield sim, v1


def held_body(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": {A + "run-seconds": "0.05"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1"}]}}


def lives(v1: client.CoreV1Api, names: list[str], *, since: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Every (resourceVersion, status) each pod's events carry after ``since``, until all are torn down."""
    seen: dict[str, list[tuple[int, dict[str, Any]]]] = {name: [] for name in names}
    done: set[str] = set()
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, NS, resource_version=since, timeout_seconds=20):
        raw = event["raw_object"]
        name = raw["metadata"]["name"]
        if name not in seen:
            continue
        seen[name].append((int(raw["metadata"]["resourceVersion"]), raw["status"]))
        if torn_down(raw["status"]):
            done.add(name)
        if done == set(names):
            w.stop()
    assert done == set(names), f"not torn down within the watch: {sorted(set(names) - done)}"
    return seen


def test_pods_created_while_paused_live_in_full_after_resume_in_creation_order(paused: tuple[KubeSim, client.CoreV1Api]) -> None:
    sim, v1 = paused
    admin = sim.admin()
    start = v1.list_namespaced_pod(NS).metadata.resource_version
    names = [f"held-{i}" for i in range(5)]
    for name in names:
        v1.create_namespaced_pod(NS, held_body(name))
    after_creates = admin.resource_version()
    stats = admin.stats()
    assert stats["kubeletPaused"] and stats["kubeletTasks"] == len(names)
    assert [p.status.phase for p in v1.list_namespaced_pod(NS).items] == ["Pending"] * len(names)
    assert admin.resource_version() == after_creates  # nothing written while paused
    admin.resume_kubelet()
    held = lives(v1, names, since=start)
    reference_start = v1.list_namespaced_pod(NS).metadata.resource_version
    v1.create_namespaced_pod(NS, held_body("never-held"))
    reference = [normalize(status) for _rv, status in lives(v1, ["never-held"], since=reference_start)["never-held"]]
    for name in names:
        assert [normalize(status) for _rv, status in held[name]] == reference, name
    first_writes = [held[name][1][0] for name in names]  # [0] is ADDED, [1] the binding after the resume
    assert first_writes == sorted(first_writes), "lives did not start in creation order"


def test_a_resume_before_the_schedule_delay_still_waits_it_out(paused: tuple[KubeSim, client.CoreV1Api]) -> None:
    sim, v1 = paused
    admin = sim.admin()
    admin.set_kubelet_delays(schedule=0.5)
    started = time.monotonic()
    created = v1.create_namespaced_pod(NS, held_body("soon"))
    admin.resume_kubelet()
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_pod, NS, resource_version=created.metadata.resource_version, timeout_seconds=20):
        if event["raw_object"]["spec"].get("nodeName"):
            w.stop()
    assert time.monotonic() - started >= 0.5


def test_a_pod_deleted_while_paused_never_starts_a_life(paused: tuple[KubeSim, client.CoreV1Api]) -> None:
    sim, v1 = paused
    admin = sim.admin()
    v1.create_namespaced_pod(NS, held_body("gone"))
    assert admin.stats()["kubeletTasks"] == 1
    v1.delete_namespaced_pod("gone", NS)  # never scheduled: removed at once
    assert admin.stats()["kubeletTasks"] == 0
    admin.resume_kubelet()
    since = v1.list_namespaced_pod(NS).metadata.resource_version
    v1.create_namespaced_pod(NS, held_body("gone"))  # the same name again: a new pod with a life of its own
    statuses = [status for _rv, status in lives(v1, ["gone"], since=since)["gone"]]
    assert statuses[-1]["phase"] == "Succeeded"
