"""podq's lines in a task try's log file (podq/airflow/tasklog.py): Airflow's structured JSON lines."""
from __future__ import annotations

import json

from podq.airflow.mapping import failure_lines
from podq.airflow.tasklog import LOGGER_NAME, TaskLogFiles
from podq.shared.records import FailureDetails, KubernetesResults, TaskKey
from podq.shared.states import Source, State

PATH = "dag_id=etl/run_id=manual__1/task_id=load/attempt=1.log"


def test_lines_are_appended_as_airflows_structured_records(tmp_path):
    files = TaskLogFiles(tmp_path)
    assert files.append(PATH, ["podq job j (pod ns/p) pending: Unschedulable: 0/3 nodes are available"])
    assert files.append(PATH, ["second", "third"], level="error")
    records = [json.loads(line) for line in (tmp_path / PATH).read_text().splitlines()]
    assert [record["event"] for record in records] == [
        "podq job j (pod ns/p) pending: Unschedulable: 0/3 nodes are available", "second", "third"]
    assert [record["level"] for record in records] == ["info", "error", "error"]
    assert all(record["logger"] == LOGGER_NAME and record["timestamp"].endswith("Z") for record in records)


def test_no_path_or_one_leaving_the_log_folder_writes_nothing(tmp_path):
    files = TaskLogFiles(tmp_path / "logs")
    assert not files.append(None, ["x"]) and not files.append("", ["x"])
    assert not files.append("../outside.log", ["x"])
    assert not (tmp_path / "outside.log").exists()


def test_an_unwritable_folder_is_reported_not_raised(tmp_path):
    (tmp_path / "file").write_text("")
    assert not TaskLogFiles(tmp_path / "file").append("a/attempt=1.log", ["x"])


def test_a_launch_that_never_ran_is_told_with_its_events_and_log_tail_one_per_line():
    details = FailureDetails(pod_status="Failed", container_state="terminated", container_reason="Error",
                             exit_code=1, container_name="base", events=("Warning BackOff: back-off",),
                             log_tail=("Traceback (most recent call last):", "ImportError: no module x"))
    result = KubernetesResults(entry_id="1-0", event_id="j:failed", job_id="j",
                               key=TaskKey(dag_id="d", task_id="t", run_id="r"), state=State.FAILED, terminal=True,
                               pod_name="d-t-0", namespace="ns", resource_version=None, failure_details=details,
                               source=Source.WATCHER)
    lines = failure_lines(result)
    assert lines[0].startswith("podq job j (pod ns/d-t-0) failed: main container base terminated Error, exit code 1")
    assert lines[1:] == ["the pod's last Kubernetes Events:", "  Warning BackOff: back-off",
                         "the last 2 line(s) of container base's log:", "  Traceback (most recent call last):",
                         "  ImportError: no module x"]
