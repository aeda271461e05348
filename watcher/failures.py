"""Why a pod failed: the pod's story and the failing container's, as :class:`FailureDetails`.

Init containers are looked at first (they run before the main ones); within a
group the first container that terminated with a non-zero exit code and a reason
other than ``Completed`` wins, and failing that the last one still waiting.
"""
from __future__ import annotations

from podq.shared.records import FailureDetails

from .events import ContainerView, PodView


def failure_details(pod: PodView, *, reason: str | None = None, message: str | None = None) -> FailureDetails:
    """The details of a failed (or never started) pod; ``reason``/``message`` are podq's own verdict."""
    culprit = _culprit([c for c in pod.containers if c.init]) or _culprit([c for c in pod.containers if not c.init])
    container = {}
    if culprit is not None:
        container = {"container_state": culprit.state, "container_reason": culprit.reason,
                     "container_message": culprit.message, "container_type": "init" if culprit.init else "main",
                     "container_name": culprit.name}
        if culprit.state == "terminated":
            container["exit_code"] = culprit.exit_code
    return FailureDetails(pod_status=pod.phase, pod_reason=pod.reason, pod_message=pod.message,
                          reason=reason, message=message, **container)


def _culprit(containers: list[ContainerView]) -> ContainerView | None:
    waiting = None
    for container in containers:
        if container.state == "terminated":
            if (container.exit_code or 0) != 0 and container.reason != "Completed":
                return container
        elif container.state == "waiting":
            waiting = container
    return waiting
