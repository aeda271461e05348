"""Which launch of a task try Airflow still waits for (podq.airflow.launches): pure rules, no Airflow."""
from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace

import pytest

from podq.airflow.launches import Launch, TaskInstanceRow, launch_id_of, still_wanted

Key = namedtuple("Key", "dag_id task_id run_id try_number map_index")
KEY = Key("d", "t", "r", 2, -1)
LAUNCH = Launch(job_id="job-2", key=KEY, ti_id="ti-1", launch_id="launch-2")


def row(state="queued", try_number=2, external_executor_id="launch-2") -> TaskInstanceRow:
    return TaskInstanceRow(state=state, try_number=try_number, external_executor_id=external_executor_id)


@pytest.mark.parametrize("current", ["launch-2", "job-2"])
@pytest.mark.parametrize("state", ["queued", "running"])
def test_the_current_launch_is_wanted_before_and_after_airflow_took_the_queued_event(state, current):
    # external_executor_id is the launch id Airflow pre-assigned, then the job id of the executor's event.
    assert still_wanted(LAUNCH, row(state=state, external_executor_id=current))


@pytest.mark.parametrize("moved_on", [
    None,                                              # the try's row is gone: cleared, reset, a new try
    row(try_number=3),                                 # the try number moved
    row(state="scheduled"), row(state="up_for_reschedule"), row(state="deferred"), row(state="failed"),
    row(external_executor_id="launch-3"),              # queued again since (here or by another scheduler)
    row(external_executor_id=None),
])
def test_a_launch_airflow_moved_past_is_not_wanted(moved_on):
    assert not still_wanted(LAUNCH, moved_on)


def test_without_a_pre_assigned_id_the_job_id_names_the_launch():
    launch = Launch(job_id="job-1", key=KEY, ti_id="ti-1", launch_id=None)
    assert still_wanted(launch, row(external_executor_id=None))
    assert still_wanted(launch, row(external_executor_id="job-1"))
    assert not still_wanted(launch, row(external_executor_id="launch-9"))


def test_the_launch_id_is_the_pre_assigned_external_executor_id():
    assert launch_id_of(SimpleNamespace(external_executor_id="0190a1b2")) == "0190a1b2"
    assert launch_id_of(SimpleNamespace(external_executor_id=None)) is None
    assert launch_id_of(SimpleNamespace()) is None
