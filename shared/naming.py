"""Names podq derives: job ids, pod names, label values, and the label/annotation keys.

Everything here is a pure function of its input, so every process (and every
producer in another language, following docs/protocol.md) derives the same names.
"""
from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import TaskKey

# Airflow-compatible label and annotation keys (the executor's own spelling).
DAG_ID = "dag_id"
TASK_ID = "task_id"
RUN_ID = "run_id"
TRY_NUMBER = "try_number"
MAP_INDEX = "map_index"
AIRFLOW_WORKER = "airflow-worker"
KUBERNETES_EXECUTOR = "kubernetes_executor"
EXECUTOR_DONE = "airflow_executor_done"
POD_REVOKED = "airflow_pod_revoked"
# podq's own keys.
JOB_ID_KEY = "podq.io/job-id"
SCHEDULER_ID_KEY = "podq.io/scheduler-id"
# The task key's launch id, when the job has one (the watcher rebuilds the key from the annotations).
LAUNCH_ID_KEY = "podq.io/launch-id"
# Which launch of its job a pod is, from the second on (docs/pods.md, "Launch failures").
LAUNCH_KEY = "podq.io/launch"
# The job's W3C trace context (shared/tracing.py); results carry it among their annotations.
TRACEPARENT = "podq.io/traceparent"
MAIN_CONTAINER = "base"

POD_NAME_MAX = 63
_JOB_ID_LEN = 32
_NAME_HASH_LEN = 16
_LABEL_MAX = 63
_INVALID_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9-]+")
_LABEL_EDGE = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# ASCII A-Z to a-z and nothing else: str.lower() would turn the Kelvin sign into "k" and a
# dotted capital I into "i" plus a combining dot, which other languages' lower-casing may not.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def derive_job_id(scheduler_id: str, key: "TaskKey") -> str:
    """32 hex characters of SHA-256 over the scheduler id and the task key, joined by 0x1F.

    The key's ``launch_id``, when it has one, is a seventh part; a key without one derives the
    id it always did.
    """
    parts: tuple[str, ...] = (scheduler_id, key.dag_id, key.task_id, key.run_id, str(key.try_number),
                              str(key.map_index))
    if key.launch_id is not None:
        parts += (key.launch_id,)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:_JOB_ID_LEN]


def pod_name_for(job_id: str, key: "TaskKey", *, launch: int = 1) -> str:
    """A DNS-1123 pod name of at most 63 characters, unique per job and launch.

    A readable slug of ``dag_id-task_id`` followed by 16 hex characters of the job id:
    the slug may be cut or empty (unicode ids), the hash keeps names distinct. Only ASCII
    letters are lower-cased; every other character outside ``a-z0-9-`` becomes ``-``.
    A later ``launch`` of the same job (its pod failed before it started and is created
    again, docs/pods.md) ends in 16 hex characters of SHA-256 over the job id and the launch
    number, joined by 0x1F, instead.
    """
    slug = _INVALID_NAME_CHARS.sub("-", f"{key.dag_id}-{key.task_id}".translate(_ASCII_LOWER))
    slug = re.sub(r"-{2,}", "-", slug).strip("-")
    suffix = (job_id[:_NAME_HASH_LEN] if launch <= 1
              else hashlib.sha256(f"{job_id}\x1f{launch}".encode()).hexdigest()[:_NAME_HASH_LEN])
    room = POD_NAME_MAX - len(suffix) - 1
    slug = slug[:room].rstrip("-") or "podq"
    return f"{slug}-{suffix}"


def is_dns_1123_label(name: str) -> bool:
    """True when ``name`` is a valid DNS-1123 label (what pod names here must be)."""
    return len(name) <= POD_NAME_MAX and bool(_DNS_1123.match(name))


def safe_label_value(value: str) -> str:
    """A valid label value for ``value``; changed or long values get a hash suffix.

    Same shape as Airflow's label sanitising (so selectors written for Airflow's
    labels still match): invalid characters dropped, and when anything changed or
    the value is over 63 characters, the first 53 kept plus ``-`` and 9 hex
    characters of the original's MD5.
    """
    safe = _LABEL_EDGE.sub("", _INVALID_LABEL_CHARS.sub("", value))
    if len(safe) > _LABEL_MAX or safe != value:
        digest = hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()[:9]
        safe = f"{safe[:53]}-{digest}"
    return safe


def pod_labels(*, job_id: str, scheduler_id: str, key: "TaskKey") -> dict[str, str]:
    """The labels podq sets on every pod (Airflow's executor keys plus podq's job id)."""
    labels = {
        DAG_ID: safe_label_value(key.dag_id),
        TASK_ID: safe_label_value(key.task_id),
        RUN_ID: safe_label_value(key.run_id),
        TRY_NUMBER: str(key.try_number),
        KUBERNETES_EXECUTOR: "True",
        AIRFLOW_WORKER: safe_label_value(scheduler_id),
        JOB_ID_KEY: job_id,
    }
    if key.map_index >= 0:
        labels[MAP_INDEX] = str(key.map_index)
    return labels


def pod_annotations(*, job_id: str, scheduler_id: str, key: "TaskKey") -> dict[str, str]:
    """The raw, unsanitised identity podq writes as annotations (the watcher reads these)."""
    annotations = {
        DAG_ID: key.dag_id,
        TASK_ID: key.task_id,
        RUN_ID: key.run_id,
        TRY_NUMBER: str(key.try_number),
        JOB_ID_KEY: job_id,
        SCHEDULER_ID_KEY: scheduler_id,
    }
    if key.map_index >= 0:
        annotations[MAP_INDEX] = str(key.map_index)
    if key.launch_id is not None:
        annotations[LAUNCH_ID_KEY] = key.launch_id
    return annotations


def podq_selector() -> str:
    """The label selector matching every live podq pod not yet marked done."""
    return f"{KUBERNETES_EXECUTOR}=True,{JOB_ID_KEY},{EXECUTOR_DONE}!=True"
