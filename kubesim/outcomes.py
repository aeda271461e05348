"""Per-pod outcome annotations: how the simulated kubelet should make a pod's life go."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

PREFIX = "kubesim.podq.io/"
OUTCOME = PREFIX + "outcome"
RUN_SECONDS = PREFIX + "run-seconds"
EXIT_CODE = PREFIX + "exit-code"
MESSAGE = PREFIX + "message"
INIT_EXIT_CODE = PREFIX + "init-exit-code"

SUCCEEDED = "Succeeded"
FAILED = "Failed"
OOM_KILLED = "OOMKilled"
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
INVALID_IMAGE_NAME = "InvalidImageName"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
PULL_QPS_EXCEEDED = "PullQPSExceeded"
INIT_FAILED = "InitFailed"
PROVIDER_FAILED = "ProviderFailed"
EVICTED = "Evicted"
DEADLINE_EXCEEDED = "DeadlineExceeded"
UNSCHEDULABLE = "Unschedulable"
FAILED_MOUNT = "FailedMount"

KINDS = frozenset(
    {
        SUCCEEDED,
        FAILED,
        OOM_KILLED,
        ERR_IMAGE_PULL,
        IMAGE_PULL_BACK_OFF,
        INVALID_IMAGE_NAME,
        CREATE_CONTAINER_CONFIG_ERROR,
        PULL_QPS_EXCEEDED,
        INIT_FAILED,
        PROVIDER_FAILED,
        EVICTED,
        DEADLINE_EXCEEDED,
        UNSCHEDULABLE,
        FAILED_MOUNT,
    }
)

DEFAULT_MESSAGES = {
    ERR_IMAGE_PULL: (
        'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/{image}": failed to resolve '
        'reference "docker.io/{image}": docker.io/{image}: not found'
    ),
    IMAGE_PULL_BACK_OFF: 'Back-off pulling image "{image}"',
    INVALID_IMAGE_NAME: (
        'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": invalid reference format'
    ),
    CREATE_CONTAINER_CONFIG_ERROR: 'secret "airflow-secrets" not found',
    PROVIDER_FAILED: "api call to https://aci: 400 InvalidContainerImage",
    EVICTED: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi. ",
    DEADLINE_EXCEEDED: "Pod was active on the node longer than the specified deadline",
    FAILED_MOUNT: 'MountVolume.SetUp failed for volume "{image}" : configmap "{image}" not found',
    UNSCHEDULABLE: (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    ),
}


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    run_seconds: float
    exit_code: int
    message: str | None
    init_exit_code: int

    def message_for(self, kind: str, *, image: str = "") -> str:
        return self.message or DEFAULT_MESSAGES.get(kind, "").format(image=image)


def _number(annotations: Mapping[str, str], key: str, *, default: float, pod: str) -> float:
    raw = annotations.get(key)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        log.warning("pod %s: ignoring annotation %s=%r (not a number)", pod, key, raw)
        return default


def outcome_of(annotations: Mapping[str, str] | None, *, default_run_seconds: float, pod: str = "") -> Outcome:
    """Read the outcome annotations; anything missing or malformed falls back to a clean exit 0."""
    annotations = annotations or {}
    exit_code = int(_number(annotations, EXIT_CODE, default=0, pod=pod))
    kind = annotations.get(OUTCOME) or (FAILED if exit_code else SUCCEEDED)
    if kind not in KINDS:
        log.warning("pod %s: unknown %s=%r; known: %s", pod, OUTCOME, kind, sorted(KINDS))
        kind = SUCCEEDED
    if kind == OOM_KILLED:
        exit_code = 137
    elif kind == FAILED and not exit_code:
        exit_code = 1
    return Outcome(
        kind=kind,
        run_seconds=max(0.0, _number(annotations, RUN_SECONDS, default=default_run_seconds, pod=pod)),
        exit_code=exit_code,
        message=annotations.get(MESSAGE),
        init_exit_code=int(_number(annotations, INIT_EXIT_CODE, default=1, pod=pod)) or 1,
    )
