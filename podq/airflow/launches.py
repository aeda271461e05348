"""Airflow's launches of a task try, as podq jobs: which launch is current, which Airflow still wants.

Airflow queues one try more than once: a sensor in ``reschedule`` mode after each poke, a deferred
task when its trigger fires. Each queueing is a **launch** and gets its own pod. The executor asks the
scheduler to pre-assign ``external_executor_id``: Airflow then writes a fresh id to the task instance
each time it queues it, in the same commit as the ``queued`` state, and the workload carries it. That id
is the podq task key's ``launch_id`` (docs/protocol.md), so a new launch is a new job and a repeated
queueing of the same launch (a resubmission, a redelivery) is the same job, never a second pod.

Pure rules here (unit-tested without Airflow); :mod:`podq.airflow.executor` keeps the bookkeeping and
reads the metadata database.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

# Task instance states in which Airflow still waits for the pod of its current launch.
WAITING_STATES = frozenset({"queued", "running"})


@dataclass(frozen=True, kw_only=True)
class Launch:
    """One launch the executor submitted and has not yet seen start (no ``running`` or final result)."""

    job_id: str
    key: Hashable                # Airflow's TaskInstanceKey
    ti_id: str | None            # the task instance's id (one per try)
    launch_id: str | None        # the pre-assigned external_executor_id of this queueing


@dataclass(frozen=True, kw_only=True)
class TaskInstanceRow:
    """What the metadata database says of a task instance now."""

    state: str | None
    try_number: int
    external_executor_id: str | None


def launch_id_of(ti: Any) -> str | None:
    """The launch id of a workload's task instance: Airflow's pre-assigned ``external_executor_id``."""
    value = getattr(ti, "external_executor_id", None)
    return str(value) if value else None


def still_wanted(launch: Launch, row: TaskInstanceRow | None) -> bool:
    """Whether Airflow still waits for this launch's pod.

    No: the try's row is gone (a new try replaced it: cleared, reset, retried), the try number moved,
    the task instance left ``queued``/``running`` (rescheduled, deferred, failed, removed), or it was
    queued again since (another launch id: a later launch, possibly by another scheduler). The row's
    ``external_executor_id`` is the launch id until the executor's ``queued`` event replaces it with
    the job id; both name this launch.
    """
    if row is None or row.try_number != getattr(launch.key, "try_number", row.try_number):
        return False
    if (row.state or "") not in WAITING_STATES:
        return False
    return row.external_executor_id in {launch.launch_id, launch.job_id}
