"""What an Airflow user sees before a task runs, with a real Airflow 3 on podq's stack (issue 20).

* A task whose pod no node can take stays queued, and the reason the Kubernetes scheduler gives
  (``Unschedulable: 0/3 nodes are available: 3 Insufficient cpu…``) is in the task's log, as Airflow's
  REST API serves it for the queued try, and in the task instance's event log (``podq pending``),
  which the scheduler saves without a NotNullViolation (the executor holds the rows: executor.py).
* A task whose first pod is evicted before it started succeeds on try 1: podq creates a second pod (no
  Airflow retry is spent), and the task's log says so before the task's own lines.
* A task whose container exits before the task runner starts (apache/airflow #29025) fails with its
  container's last log lines in its task log (podq's PODQ_WATCHER_FAILURE_LOG_LINES, opt-in).

Both run in the quick pass (`make airflow-test-quick`).
"""
from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from podq.kubesim.outcomes import DEFAULT_MESSAGES, UNSCHEDULABLE
from tests.support import core_v1
from tests.support.airflow_system import AirflowSystem, airflow_world, podq_airflow
from tests.support.pods import EVICTED_BEFORE_START

pytestmark = pytest.mark.timeout(1800)  # real processes on a shared machine: minutes, not seconds

DAGS = Path(__file__).parent / "dags"
RUN = "pending_proof"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with airflow_world(tmp_path_factory.mktemp("airflow-pending"), dags_folder=DAGS,
                       podq_env={"PODQ_WATCHER_FAILURE_LOG_LINES": "20"}) as running:
        yield running


@pytest.fixture(scope="module")
def system(world):
    with podq_airflow(world, "podq-pending") as running:
        running.wait_for_dags(["pending_unschedulable", "pending_evicted", "pending_broken_image"])
        yield running


def task_log(system: AirflowSystem, dag_id: str, task_id: str, try_number: int) -> list[str]:
    """The task try's log as Airflow's REST API serves it (what the UI shows): one string per line."""
    body = system.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{RUN}/taskInstances/{task_id}/logs/{try_number}"
                             "?full_content=true")
    return [str(line.get("event", "")) if isinstance(line, dict) else str(line) for line in body["content"]]


def event_log(system: AirflowSystem, dag_id: str, task_id: str) -> list[tuple[str, str]]:
    """(event, extra) of the task instance's event log (the UI's audit log of the task)."""
    query = urllib.parse.urlencode({"dag_id": dag_id, "task_id": task_id, "run_id": RUN, "limit": 100})
    return [(entry["event"], entry.get("extra") or "") for entry in system.api("GET", f"/api/v2/eventLogs?{query}")
            ["event_logs"]]


def state_of(system: AirflowSystem, dag_id: str, task_id: str):
    return system.task_instances_of_run(dag_id, RUN).get((task_id, -1))


def test_an_unschedulable_tasks_log_says_why_while_it_is_queued(system):
    system.trigger("pending_unschedulable", RUN)
    # The pod's condition (Unschedulable) or the scheduler's Event (FailedScheduling), whichever came
    # first: both carry the scheduler's message.
    reason = DEFAULT_MESSAGES[UNSCHEDULABLE]

    def told():
        lines = task_log(system, "pending_unschedulable", "stuck", 1)
        return lines if any(reason in line for line in lines) else None
    lines = system.wait(told, timeout=600, what="the Unschedulable reason in the queued task's log")
    assert state_of(system, "pending_unschedulable", "stuck") == ("queued", 1)
    said = [line for line in lines if reason in line][0]
    assert said.startswith("podq job ") and " (pod default/pending-unschedulable-stuck-" in said, said
    assert f"pending: Unschedulable: {reason}" in said or f"pending: FailedScheduling: {reason}" in said, said
    events = system.wait(lambda: [extra for event, extra in event_log(system, "pending_unschedulable", "stuck")
                                  if event == "podq pending" and reason in extra], timeout=120,
                         what="the reason in the task instance's event log")
    assert events[0] == said
    assert "NotNullViolation" not in system.tail("scheduler", 100_000)


def test_a_task_whose_first_pod_is_evicted_before_it_starts_succeeds_on_try_1(system, world):
    admin = world["admin"]
    prefix = "pending-evicted-evicted-first-"
    admin.pause_kubelet()
    try:
        system.trigger("pending_evicted", RUN)
        with core_v1(world["stack"].kubeconfig) as api:
            def first_pod():
                return [pod.metadata.name for pod in api.list_namespaced_pod("default").items
                        if pod.metadata.name.startswith(prefix)]
            names = system.wait(first_pod, timeout=600, what="the task's first pod")
        admin.set_pod_status("default", names[0], status=EVICTED_BEFORE_START)
        system.wait(lambda: admin.create_count(name_prefix=prefix) == 2, timeout=120,
                    what="podq's second pod for the task")
    finally:
        admin.resume_kubelet()
    system.wait(lambda: (state_of(system, "pending_evicted", "evicted_first") or ("",))[0] == "success",
                timeout=600, what="the task to succeed")
    assert state_of(system, "pending_evicted", "evicted_first") == ("success", 1)
    creates = [entry["name"] for entry in admin.creates(name_prefix=prefix)]
    assert len(creates) == 2 and creates[0] == names[0], creates
    relaunched = [extra for event, extra in event_log(system, "pending_evicted", "evicted_first")
                  if event == "podq pending" and "Relaunched" in extra]
    assert len(relaunched) == 1 and f"launching it again as pod {creates[1]}" in relaunched[0], relaunched
    assert not [event for event, _ in event_log(system, "pending_evicted", "evicted_first")
                if event in ("podq failed", "podq lost")]
    lines = task_log(system, "pending_evicted", "evicted_first", 1)
    assert any("Relaunched" in line for line in lines), lines


def test_a_task_whose_container_exits_before_the_task_starts_has_its_last_log_lines_in_its_log(system):
    system.trigger("pending_broken_image", RUN)
    system.wait(lambda: (state_of(system, "pending_broken_image", "never_starts") or ("",))[0] == "failed",
                timeout=600, what="the task to fail")
    assert state_of(system, "pending_broken_image", "never_starts") == ("failed", 1)
    lines = task_log(system, "pending_broken_image", "never_starts", 1)
    said = [line for line in lines if line.startswith("podq job ")]
    assert said and " failed: main container base terminated Error, exit code 3" in said[-1], lines
    assert "  cannot start the task: dags_helpers is not installed" in lines, lines
    failed = [extra for event, extra in event_log(system, "pending_broken_image", "never_starts")
              if event == "podq failed"]
    assert len(failed) == 1 and "last log lines: cannot start the task: dags_helpers is not installed" in failed[0]
