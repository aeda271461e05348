"""kubesim compatibility suite: the unmodified clients against a live kubesim.

Checklist 6 of shared/reference/kubernetes-api.md, item by item, with the pinned official client (37.0.1):
  create (201, uid/RV/timestamp; 409 AlreadyExists; generateName) ... test_kubesim_api: test_create_*, test_generate_name_*
  list (global RV, items without kind) .............................. test_kubesim_api: test_list_rv_is_global_*
  selectors (!=, notin, !key, in, status.phase!=, unknown field 400) . test_kubesim_api: test_selectors_on_list
  watch: RV 0/unset synthetic ADDED; RV=N exactly the later events ... test_kubesim_api: test_watch_from_zero_*
  watch: label patch out of / into the selector -> DELETED / ADDED ... test_kubesim_api: test_label_change_*
  watch: no-op patch -> no event ..................................... test_kubesim_api: test_label_change_* (second patch)
  watch: compact then old RV -> 200 + ERROR 410; with timeout raises,
         without it exactly one re-request then raises .............. test_kubesim_faults: test_watch_after_compaction_*
  watch: allowWatchBookmarks -> BOOKMARK dicts, w.resource_version ... test_kubesim_api: test_bookmarks_advance_watch_rv
  watch: timeoutSeconds on an idle stream; stop()/disconnect ........ test_kubesim_api: test_watch_timeout_*, test_watch_stop_*
  patch: dict = strategic merge, list = json-patch, merge via
         _content_type, status through the main resource ignored .... test_kubesim_api: test_patch_types_*
  delete: pending -> MODIFIED + DELETED at once; running -> MODIFIED,
          then DELETED after the kubelet; missing -> 404 ............ test_kubesim_api: test_delete_*, test_get_missing_is_404
  deserialization under 37.x and 36.0.3 ............................. this module (every object of the corpus below)
This module also runs create/get/list/watch/patch/delete with kubernetes_asyncio, lightkube and kr8s, and checks
that every pod kubesim emitted over a full set of outcomes deserializes into each client's models.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from podq.kubesim.server import KubeSim
from podq.kubesim.testing import running_kubesim, wait_for
from tests.support import core_v1

NS = "default"
IMAGE = "apache/airflow:3.1.0"
A = "kubesim.podq.io/"
REPO = Path(__file__).resolve().parents[2]
K8S36_VENV = REPO / ".podq" / "venv-k8s36"
K8S36_VERSION = "36.0.3"

OUTCOMES: dict[str, dict[str, Any]] = {
    "ok": {"annotations": {}},
    "exit1": {"annotations": {A + "exit-code": "1"}},
    "oom": {"annotations": {A + "outcome": "OOMKilled"}},
    "pull": {"annotations": {A + "outcome": "ErrImagePull"}},
    "config": {"annotations": {A + "outcome": "CreateContainerConfigError"}},
    "invalid": {"annotations": {A + "outcome": "InvalidImageName"}},
    "qps": {"annotations": {A + "outcome": "PullQPSExceeded"}},
    "initfail": {"annotations": {A + "outcome": "InitFailed"}, "init": True},
    "initok": {"annotations": {}, "init": True},
    "provider": {"annotations": {A + "outcome": "ProviderFailed"}},
    "evicted": {"annotations": {A + "outcome": "Evicted"}},
    "deadline": {"annotations": {A + "outcome": "DeadlineExceeded"}},
    "unsched": {"annotations": {A + "outcome": "Unschedulable"}},
    "crash": {"annotations": {A + "exit-code": "3"}, "restartPolicy": "Always"},
    "longrun": {"annotations": {A + "run-seconds": "60"}},
}


def body(name: str, *, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
         init: bool = False, restart_policy: str = "Never") -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": restart_policy, "containers": [{"name": "base", "image": IMAGE}]}
    if init:
        spec["initContainers"] = [{"name": "init", "image": IMAGE}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": "compat"}, "annotations": annotations or {}}, "spec": spec}


@pytest.fixture(scope="module")
def sim() -> Iterator[KubeSim]:
    with running_kubesim() as server:
        server.admin().set_bookmark_interval(0.05)
        yield server


@pytest.fixture(scope="module")
def v1(sim: KubeSim) -> Iterator[client.CoreV1Api]:
    with core_v1(sim.kubeconfig) as api:
        yield api


def _settled(pod: dict[str, Any]) -> bool:
    status = pod["status"]
    if status.get("phase") in ("Succeeded", "Failed"):
        return status.get("reason") in ("ProviderFailed", "Evicted") or any(
            c["type"] == "PodReadyToStartContainers" and c["status"] == "False" for c in status.get("conditions", [])
        )
    conds = {c["type"]: c for c in status.get("conditions", [])}
    if conds.get("PodScheduled", {}).get("reason") == "Unschedulable":
        return True
    cs = (status.get("containerStatuses") or [{}])[0]
    waiting = cs.get("state", {}).get("waiting", {}).get("reason")
    return waiting in ("ImagePullBackOff", "CreateContainerConfigError", "InvalidImageName") or (
        cs.get("restartCount", 0) >= 1
    ) or status.get("phase") == "Running" and pod["metadata"]["name"] == "corpus-longrun"


@pytest.fixture(scope="module")
def corpus(sim: KubeSim, v1: client.CoreV1Api) -> list[dict[str, Any]]:
    """Every object kubesim wrote for a full set of outcomes, deletions included, replayed from its history."""
    start = str(sim.admin().resource_version())
    for key, spec in OUTCOMES.items():
        v1.create_namespaced_pod(NS, body(f"corpus-{key}", annotations=spec["annotations"], init=spec.get("init", False),
                                          restart_policy=spec.get("restartPolicy", "Never")))

    def all_settled() -> bool:
        items = json.loads(v1.list_namespaced_pod(NS, label_selector="app=compat", _preload_content=False).data)["items"]
        return all(_settled(p) for p in items if p["metadata"]["name"].startswith("corpus-"))

    wait_for(all_settled, timeout=20, what="every corpus pod settled")
    for key in OUTCOMES:
        v1.delete_namespaced_pod(f"corpus-{key}", NS)
    wait_for(lambda: not [p for p in v1.list_namespaced_pod(NS).items if p.metadata.name.startswith("corpus-")],
             timeout=20, what="corpus pods deleted")
    response = v1.list_namespaced_pod(NS, watch=True, resource_version=start, timeout_seconds=1, _preload_content=False)
    events = [json.loads(line) for line in response.data.decode().splitlines()]
    assert all(line for line in response.data.decode().split("\n")[:-1]), "blank line in a watch stream"
    objects = [e["object"] for e in events if e["type"] in ("ADDED", "MODIFIED", "DELETED")]
    objects.append(json.loads(v1.read_namespace(NS, _preload_content=False).data))
    assert {e["type"] for e in events} == {"ADDED", "MODIFIED", "DELETED"}
    assert len(objects) > 100
    return [o for o in objects if o.get("kind") == "Pod"]


def test_official_client_37_deserializes_every_object(v1: client.CoreV1Api, corpus: list[dict[str, Any]]) -> None:
    for obj in corpus:
        pod = v1.api_client.deserialize(json.dumps(obj), "V1Pod", "application/json")
        assert pod.metadata.uid == obj["metadata"]["uid"]


def _ensure_k8s36_venv() -> Path:
    python = K8S36_VENV / "bin" / "python"
    marker = K8S36_VENV / f".installed-kubernetes-{K8S36_VERSION}"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(K8S36_VENV)], check=True, timeout=120)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"kubernetes=={K8S36_VERSION}"],
            capture_output=True, text=True, timeout=600,
        )
        assert install.returncode == 0, f"installing kubernetes=={K8S36_VERSION} failed:\n{install.stdout}\n{install.stderr}"
        marker.touch()
    return python


K8S36_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import kubernetes
    from kubernetes import client, config, watch
    assert kubernetes.__version__ == sys.argv[3], kubernetes.__version__

    class Raw:
        def __init__(self, data):
            self.data = data

    api_client = config.new_client_from_config(config_file=sys.argv[1])
    corpus = json.load(open(sys.argv[2]))
    for obj in corpus:
        pod = api_client.deserialize(Raw(json.dumps(obj)), "V1Pod")
        assert pod.metadata.uid == obj["metadata"]["uid"]
    v1 = client.CoreV1Api(api_client)
    ns = "default"
    created = v1.create_namespaced_pod(ns, {"metadata": {"name": "legacy", "labels": {"x": "1"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1"}]}})
    phases = []
    for event in watch.Watch().stream(v1.list_namespaced_pod, ns, field_selector="metadata.name=legacy",
                                       resource_version=created.metadata.resource_version, timeout_seconds=10):
        phases.append(event["object"].status.phase)
        if event["object"].status.phase == "Succeeded":
            break
    assert phases[-1] == "Succeeded", phases
    assert v1.read_namespaced_pod("legacy", ns).metadata.labels == {"x": "1"}
    assert "legacy" in [p.metadata.name for p in v1.list_namespaced_pod(ns, label_selector="x=1").items]
    v1.patch_namespaced_pod("legacy", ns, {"metadata": {"labels": {"y": "2"}}})
    v1.delete_namespaced_pod("legacy", ns)
    print("OK", len(corpus))
    """
)


def test_legacy_client_36_deserializes_every_object(sim: KubeSim, corpus: list[dict[str, Any]], tmp_path: Path) -> None:
    python = _ensure_k8s36_venv()
    corpus_file = tmp_path / "corpus.json"
    corpus_file.write_text(json.dumps(corpus))
    script = tmp_path / "legacy.py"
    script.write_text(K8S36_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run([str(python), str(script), sim.kubeconfig, str(corpus_file), K8S36_VERSION],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["OK", str(len(corpus))]


# -- kubernetes_asyncio ---------------------------------------------------------------------------------------------
def test_kubernetes_asyncio(sim: KubeSim, corpus: list[dict[str, Any]]) -> None:
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio import config as aconfig
    from kubernetes_asyncio import watch as awatch

    class Raw:
        def __init__(self, data: str) -> None:
            self.data = data

    async def scenario() -> None:
        api_client = await aconfig.new_client_from_config(config_file=sim.kubeconfig)
        async with api_client:
            for obj in corpus:
                assert api_client.deserialize(Raw(json.dumps(obj)), "V1Pod").metadata.uid == obj["metadata"]["uid"]
            v1 = aclient.CoreV1Api(api_client)
            created = await v1.create_namespaced_pod(NS, body("kaio", labels={"lib": "kaio"}))
            assert (await v1.read_namespaced_pod("kaio", NS)).metadata.uid == created.metadata.uid
            listed = await v1.list_namespaced_pod(NS, label_selector="lib=kaio")
            assert [p.metadata.name for p in listed.items] == ["kaio"]
            phases = []
            async with awatch.Watch() as w:  # its own ApiClient is closed on exit
                async for event in w.stream(v1.list_namespaced_pod, NS, label_selector="lib=kaio",
                                            resource_version=created.metadata.resource_version, timeout_seconds=10,
                                            allow_watch_bookmarks=True):
                    if event["type"] == "BOOKMARK":
                        continue
                    phases.append(event["object"].status.phase)
                    if event["object"].status.phase == "Succeeded":
                        break
            assert phases[-1] == "Succeeded"
            patched = await v1.patch_namespaced_pod("kaio", NS, {"metadata": {"labels": {"extra": "1"}}})
            assert patched.metadata.labels == {"lib": "kaio", "extra": "1"}
            deleted = await v1.delete_namespaced_pod("kaio", NS)
            assert deleted.metadata.deletion_timestamp is not None
            with pytest.raises(aclient.ApiException) as info:
                await v1.read_namespaced_pod("kaio", NS)
            assert info.value.status == 404

    asyncio.run(scenario())


# -- lightkube ---------------------------------------------------------------------------------------------------------
def test_lightkube(sim: KubeSim, corpus: list[dict[str, Any]]) -> None:
    from lightkube import ApiError, Client, KubeConfig
    from lightkube.resources.core_v1 import Pod

    for obj in corpus:
        assert Pod.from_dict(obj, lazy=False).metadata.uid == obj["metadata"]["uid"]
    lk = Client(config=KubeConfig.from_file(sim.kubeconfig), namespace=NS)
    try:
        created = lk.create(Pod.from_dict(body("lightkube", labels={"lib": "lightkube"})))
        assert lk.get(Pod, "lightkube").metadata.uid == created.metadata.uid
        assert [p.metadata.name for p in lk.list(Pod, labels={"lib": "lightkube"})] == ["lightkube"]
        phases = []
        for _kind, pod in lk.watch(Pod, labels={"lib": "lightkube"}, resource_version=created.metadata.resourceVersion):
            phases.append(pod.status.phase)
            if pod.status.phase == "Succeeded":
                break
        assert phases[-1] == "Succeeded"
        patched = lk.patch(Pod, "lightkube", {"metadata": {"labels": {"extra": "1"}}})
        assert patched.metadata.labels == {"lib": "lightkube", "extra": "1"}
        lk.delete(Pod, "lightkube")
        wait_for(lambda: not list(lk.list(Pod, labels={"lib": "lightkube"})), what="lightkube pod deleted")
        with pytest.raises(ApiError) as info:
            lk.get(Pod, "lightkube")
        assert info.value.status.code == 404
    finally:
        lk.close()


# -- kr8s ----------------------------------------------------------------------------------------------------------------
def test_kr8s(sim: KubeSim, corpus: list[dict[str, Any]]) -> None:
    import kr8s
    from kr8s.asyncio.objects import Pod

    async def scenario() -> None:
        api = await kr8s.asyncio.api(kubeconfig=sim.kubeconfig)
        for obj in corpus:
            assert (await Pod(obj, api=api)).metadata.uid == obj["metadata"]["uid"]
        pod = await Pod(body("kr8s", labels={"lib": "kr8s"}), api=api)
        await pod.create()
        fetched = await Pod.get("kr8s", namespace=NS, api=api)
        assert fetched.metadata.uid == pod.metadata.uid
        listed = [p.name async for p in api.get("pods", namespace=NS, label_selector={"lib": "kr8s"})]
        assert listed == ["kr8s"]
        phases = []
        async for _kind, obj in api.watch("pods", namespace=NS, label_selector={"lib": "kr8s"}, since=pod.metadata.resourceVersion):
            phases.append(obj.status.phase)
            if obj.status.phase == "Succeeded":
                break
        assert phases[-1] == "Succeeded"
        await fetched.patch({"metadata": {"labels": {"extra": "1"}}})
        assert fetched.labels == {"lib": "kr8s", "extra": "1"}
        await fetched.delete()
        with pytest.raises(kr8s.NotFoundError):
            await Pod.get("kr8s", namespace=NS, api=api, timeout=0)

    asyncio.run(scenario())


def test_watch_stream_framing(sim: KubeSim, v1: client.CoreV1Api) -> None:
    """Chunked, application/json, one event per line, no blank lines; headers before any event."""
    response = v1.list_namespaced_pod(NS, watch=True, timeout_seconds=1, _preload_content=False)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Encoding" not in response.headers
    response.read()
    watch_events = list(watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=1))
    assert all(event is not None for event in watch_events)
