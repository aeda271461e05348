"""What a pod event means for its job: the seed's ``process_status``, finished.

Pure functions of a :class:`PodEvent` (no I/O). The order follows Airflow's
KubernetesJobWatcher; where Airflow publishes nothing and leaves the task stuck
(a Pending pod deleted, a revoked pod), podq ends the job. docs/protocol.md
("Seed outcome → podq state") is the table this module implements.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from podq.shared import naming
from podq.shared.records import FailureDetails, PendingReason
from podq.shared.states import State

from .events import EventType, PodView
from .failures import failure_details

PROVIDER_FAILED = "ProviderFailed"
QPS_EXCEEDED = "pull QPS exceeded"
DEFAULT_FATAL_REASONS = ("CreateContainerConfigError", "ErrImagePull", "CreateContainerError",
                         "ImageInspectError", "InvalidImageName")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classification of one event.

    ``state`` None publishes nothing. ``ledger_decides`` marks a ``lost`` that
    becomes ``revoked`` when the ledger says the job was revoked. ``gone`` says the
    pod left the watch with this event (its stored state is dropped). ``launch_failure``
    marks an end before the pod's main container started (evicted, preempted, its node
    lost, deleted by something else, a fatal waiting reason): the job may be launched again
    (watcher/relaunch.py).
    """

    state: State | None
    details: FailureDetails | None = None
    note: str = ""
    gone: bool = False
    ledger_decides: bool = False
    warn: bool = False
    launch_failure: bool = False


def classify(kind: EventType, pod: PodView, *, fatal_reasons: Iterable[str] = DEFAULT_FATAL_REASONS) -> Verdict:
    """Classify one ADDED/MODIFIED/DELETED/LISTED event of ``pod``."""
    deleted = kind is EventType.DELETED
    if pod.revoked:
        return Verdict(State.REVOKED, note="pod revoked", gone=deleted)
    if deleted and not pod.deleting:
        # The pod left the label selector (marked done, or relabelled): no later event of it comes.
        return left_the_watch(pod)
    if pod.reason == PROVIDER_FAILED:
        return Verdict(State.FAILED, failure_details(pod), note="provider failed", gone=deleted,
                       launch_failure=never_started(pod))
    phase = pod.phase
    if phase == "Pending":
        if deleted:
            return Verdict(State.LOST, FailureDetails(pod_status=phase, reason="PodDeleted",
                                                      message="pod deleted while Pending"),
                           note="deleted while Pending", gone=True, ledger_decides=True, launch_failure=True)
        fatal = fatal_container(pod, fatal_reasons)
        if fatal is not None:
            return Verdict(State.FAILED, failure_details(pod, reason=fatal),
                           note=f"fatal container state {fatal}", launch_failure=True)
        return Verdict(State.PENDING)
    if phase == "Failed":
        return Verdict(State.FAILED, failure_details(pod), note="pod failed", gone=deleted,
                       launch_failure=never_started(pod))
    if phase == "Succeeded":
        return Verdict(State.SUCCEEDED, gone=deleted)
    if phase == "Running":
        if deleted:
            return Verdict(State.FAILED, failure_details(pod, reason="PodDeleted",
                                                         message="pod deleted before it could complete"),
                           note="deleted while Running", gone=True)
        return Verdict(State.RUNNING)
    if deleted:
        return Verdict(State.LOST, FailureDetails(pod_status=phase, reason="PodDeleted",
                                                  message=f"pod deleted in phase {phase}"),
                       note=f"deleted in phase {phase}", gone=True, ledger_decides=True, warn=True)
    return Verdict(None, note=f"unknown phase {phase!r}", warn=True)


# A container the kubelet could not account for when its pod ended (it never ran, or its node is gone).
NEVER_RAN = frozenset({"ContainerStatusUnknown"})


def never_started(pod: PodView) -> bool:
    """Whether the pod ended before its main containers started (and no init container of it failed):
    no main container running or terminated by a run of its own, and never Ready."""
    if pod.was_ready:
        return False
    for container in pod.containers:
        if container.state == "running" and not container.init:
            return False
        if container.state == "terminated" and container.reason not in NEVER_RAN:
            if not container.init or (container.exit_code or 0) != 0:
                return False
    return True


def left_the_watch(pod: PodView) -> Verdict:
    """The end of a job whose pod left the watch (labelled done, or relabelled) and so is seen no more.

    After the job's terminal result (the completion policy marks kept pods done) the tracker
    publishes nothing more. Before it, the pod's status at that moment decides: Succeeded or
    Failed as usual, anything else ``lost`` (``revoked`` when the ledger says so), since
    nothing would ever end the job otherwise.
    """
    note = "marked done" if pod.done else "left the watch"
    if pod.phase == "Succeeded":
        return Verdict(State.SUCCEEDED, note=note, gone=True)
    if pod.phase == "Failed":
        return Verdict(State.FAILED, failure_details(pod), note=note, gone=True)
    # A watch's DELETED for a pod leaving the selector carries the pod as it was before (the API
    # server's rule), so only a read pod tells "labelled done" from "relabelled".
    how = (f"was labelled {naming.EXECUTOR_DONE}=True" if pod.done
           else f"left podq's label selector (labelled {naming.EXECUTOR_DONE}=True, or relabelled)")
    details = FailureDetails(pod_status=pod.phase, reason="LeftTheWatch",
                             message=f"the pod {how} while {pod.phase or 'in no phase'}, before any terminal "
                                     "result; podq does not watch it any more")
    return Verdict(State.LOST, details, note=note, gone=True, ledger_decides=True)


def fatal_container(pod: PodView, fatal_reasons: Iterable[str]) -> str | None:
    """The fatal waiting reason of an init container or the first main container, if any."""
    reasons = fatal_reasons if isinstance(fatal_reasons, (set, frozenset)) else set(fatal_reasons)
    first_main_seen = False
    for container in pod.containers:
        if not container.init:
            if first_main_seen:
                break
            first_main_seen = True
        if container.state != "waiting" or container.reason not in reasons:
            continue
        if container.reason == "ErrImagePull" and container.message == QPS_EXCEEDED:
            continue  # the kubelet's pull throttle: transient
        return container.reason
    return None


def why_pending(pod: PodView) -> PendingReason | None:
    """Why a Pending pod is not running yet, from its status: not scheduled (the scheduler's
    reason and message), else the first container waiting with a reason (init containers
    first: ``ContainerCreating``, ``ErrImagePull``, ``ImagePullBackOff``, ...); None when the
    status says nothing yet (just created)."""
    if pod.unschedulable is not None:
        reason, message = pod.unschedulable
        return PendingReason(reason=reason, message=message)
    for container in pod.containers:
        if container.state == "waiting" and container.reason:
            message = f"{container.name}: {container.message}" if container.message else container.name
            return PendingReason(reason=container.reason, message=message)
    return None


def pending_reason(pod: PodView) -> str:
    """Why a Pending pod is still pending, for the deadline's failure message."""
    if pod.unscheduled:
        return pod.unscheduled
    for container in pod.containers:
        if container.state == "waiting" and container.reason:
            text = f"{container.name}: {container.reason}"
            return f"{text}: {container.message}" if container.message else text
    return "Pending"


def deadline_verdict(pod: PodView, *, waited: float, deadline: float) -> Verdict:
    """The failure published for a pod Pending longer than ``deadline`` seconds."""
    why = pending_reason(pod)
    return Verdict(State.FAILED, failure_details(pod, reason="PendingDeadlineExceeded",
                                                 message=f"Pending for {waited:.0f} s (deadline {deadline:.0f} s): {why}"),
                   note="pending deadline exceeded")
