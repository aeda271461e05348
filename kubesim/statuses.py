"""A pod's status as the kubelet reports it: a small mutable model rendered into the real JSON shape."""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from .clock import rfc3339

JsonDict = dict[str, Any]

CONDITION_ORDER = ("DisruptionTarget", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
NODE_NAME = "kubesim-node"
HOST_IP = "10.0.0.5"


def condition(ctype: str, status: str, *, at: str, reason: str | None = None, message: str | None = None) -> JsonDict:
    cond: JsonDict = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": at}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


@functools.lru_cache(maxsize=1024)
def image_id(image: str) -> str:
    """A plausible resolved image digest: ``docker.io/<repo>@sha256:<64 hex>``, stable per image."""
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    first = repo.split("/", 1)[0]
    if "." not in first and ":" not in first and first != "localhost":
        repo = "docker.io/" + (repo if "/" in repo else "library/" + repo)
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def container_id() -> str:
    return f"containerd://{random.getrandbits(256):064x}"


@dataclass(slots=True)
class ContainerModel:
    name: str
    image: str
    state: JsonDict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: JsonDict = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    pulled: bool = False
    cid: str | None = None

    def wait(self, reason: str, message: str | None = None) -> None:
        waiting: JsonDict = {"reason": reason}
        if message:
            waiting["message"] = message
        self.state = {"waiting": waiting}
        self.ready = self.started = False

    def run(self, at: str, *, ready: bool = True) -> None:
        self.pulled = True
        self.cid = container_id()
        self.state = {"running": {"startedAt": at}}
        self.started = True
        self.ready = ready

    def terminate(self, at: str, *, exit_code: int, reason: str, message: str | None = None) -> None:
        started = (self.state.get("running") or {}).get("startedAt", at)
        term: JsonDict = {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": at}
        if message:
            term["message"] = message
        if self.cid:
            term["containerID"] = self.cid
        self.state = {"terminated": term}
        self.ready = self.started = False

    def render(self) -> JsonDict:
        out: JsonDict = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": image_id(self.image) if self.pulled else "",
            "started": self.started,
        }
        if self.cid:
            out["containerID"] = self.cid
        return out


class PodModel:
    """The kubelet's view of one pod; ``render()`` gives the ``status`` object to write."""

    def __init__(self, *, qos: str, containers: list[tuple[str, str]], init_containers: list[tuple[str, str]]) -> None:
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.qos = qos
        self.host_ip: str | None = None
        self.pod_ip: str | None = None
        self.start_time: str | None = None
        self.conditions: dict[str, JsonDict] = {}
        self.containers = [ContainerModel(n, i) for n, i in containers]
        self.init_containers = [ContainerModel(n, i) for n, i in init_containers]
        self.report_containers = False

    def set_condition(self, ctype: str, status: str, *, reason: str | None = None, message: str | None = None) -> None:
        """Set a condition; ``lastTransitionTime`` only moves when the status flips."""
        old = self.conditions.get(ctype)
        at = old["lastTransitionTime"] if old and old["status"] == status else rfc3339()
        self.conditions[ctype] = condition(ctype, status, at=at, reason=reason, message=message)

    def unready_message(self) -> str:
        names = ",".join(c.name for c in self.containers if not c.ready)
        return f"containers with unready status: [{names}]"

    def mark_containers_unready(self, reason: str = "ContainersNotReady") -> None:
        message = self.unready_message() if reason == "ContainersNotReady" else None
        self.set_condition("Ready", "False", reason=reason, message=message)
        self.set_condition("ContainersReady", "False", reason=reason, message=message)

    def render(self) -> JsonDict:
        status: JsonDict = {"phase": self.phase}
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        status["qosClass"] = self.qos
        if self.host_ip:
            status["hostIP"] = self.host_ip
            status["hostIPs"] = [{"ip": self.host_ip}]
        if self.start_time:
            status["startTime"] = self.start_time
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        if self.conditions:
            # set_condition always makes a fresh dict, so rendered statuses can share them
            status["conditions"] = [self.conditions[t] for t in CONDITION_ORDER if t in self.conditions]
        if self.report_containers:
            if self.init_containers:
                status["initContainerStatuses"] = [c.render() for c in self.init_containers]
            status["containerStatuses"] = [c.render() for c in self.containers]
        return status
