"""Raw pod objects as the API returns them, with podq's labels and a status from the samples."""
from __future__ import annotations

import copy

from podq.shared import naming
from podq.shared.records import TaskKey

from . import pod_status_samples

SAMPLES = pod_status_samples()
KEY = TaskKey(dag_id="dag", task_id="task", run_id="run", try_number=2, map_index=3)
JOB = naming.derive_job_id("sched", KEY)


def raw_pod(status: dict, *, labels: dict | None = None, deleting: bool = False) -> dict:
    metadata = {"name": "dag-task-x", "namespace": "default", "uid": "u1", "resourceVersion": "17",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {**naming.pod_labels(job_id=JOB, scheduler_id="sched", key=KEY), **(labels or {})},
                "annotations": naming.pod_annotations(job_id=JOB, scheduler_id="sched", key=KEY)}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:01:00Z"
        metadata["deletionGracePeriodSeconds"] = 30
    return {"kind": "Pod", "apiVersion": "v1", "metadata": metadata, "status": copy.deepcopy(status)}


# A pod evicted before its main container started (node pressure right after scheduling): a launch failure.
EVICTED_BEFORE_START = {
    "phase": "Failed", "reason": "Evicted", "qosClass": "BestEffort", "hostIP": "10.0.0.5",
    "message": "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 512Mi. ",
    "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                    "message": "The node was low on resource: ephemeral-storage."},
                   {"type": "PodScheduled", "status": "True"}],
    "containerStatuses": [{"name": "base", "ready": False, "restartCount": 0, "image": "apache/airflow:3.1.0",
                           "imageID": "", "started": False,
                           "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                                    "message": "The container could not be located when the pod "
                                                               "was terminated"}}}],
}
