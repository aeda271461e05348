"""The simulated kubelet: each outcome annotation produces the status shapes of pod-status-samples.json."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from podq.kubesim.server import KubeSim
from podq.kubesim.testing import running_kubesim
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
