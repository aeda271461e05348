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
