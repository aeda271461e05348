"""Priority through a real Airflow 3: a task's priority_weight orders podq's waiting line.

podq's stack runs with a create budget of one pod every five seconds (``PODQ_WORKER_CREATE_RATE=0.2``)
and one job dispatched ahead of the workers, so the DAG ``proof_priority`` (tests/airflow/dags/priority.py)
builds a backlog in podq: 24 routine tasks (priority_weight 1) wait in the scheduler's line. ``urgent``
(priority_weight 100) becomes runnable only after ``gate`` ran, so it reaches podq after them; it must
leave the line before every routine task still waiting when it arrived (first come, first served would
put it last).
"""
from __future__ import annotations

import pytest

from pathlib import Path

from podq.broker.store.connection import connect
from podq.shared.records import KubernetesJob
from tests.support.airflow_system import airflow_world, podq_airflow

pytestmark = pytest.mark.timeout(1800)

DAGS = Path(__file__).parent / "dags"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with airflow_world(tmp_path_factory.mktemp("airflow-priority"), dags_folder=DAGS,
                       podq_env={"PODQ_WORKER_CREATE_RATE": "0.2", "PODQ_INTAKE_DISPATCH_AHEAD_MIN": "1"}) as world:
        yield world


def ledger_times(redis_url: str, dag_id: str) -> dict[str, tuple[int, float, float]]:
    """task_id -> (priority, when its first try could first be released, when it was released)."""
    client = connect(redis_url)
    found = {}
    try:
        for name in client.scan_iter(match="podq:job:*", count=1000):
            record, waiting_at, accepted_at, dispatched_at = client.hmget(
                name, ["job", "waiting_at", "accepted_at", "dispatched_at"])
            if not record:
                continue
            job = KubernetesJob.decode(record)
            if job.key.dag_id == dag_id and job.key.try_number == 1:
                found[job.key.task_id] = (job.priority, float(waiting_at or accepted_at), float(dispatched_at or "inf"))
    finally:
        client.close()
    return found


def test_a_high_priority_task_leaves_podqs_backlog_before_the_tasks_waiting_ahead_of_it(world):
    with podq_airflow(world, "podq-priority") as system:
        system.wait_for_dags(["proof_priority"])
        system.trigger("proof_priority", "priority_proof")

        seen: dict[str, tuple[int, float, float]] = {}

        def finished():
            # A finished job's ledger entry is compacted (its record and times go): read them while it lives.
            for task, value in ledger_times(world["stack"].redis_url, "proof_priority").items():
                if task not in seen or seen[task][2] == float("inf"):
                    seen[task] = value
            states = {key[1]: state for key, (state, _) in system.task_instances().items()
                      if key[0] == "proof_priority"}
            done = {"success", "failed", "upstream_failed", "skipped", "removed"}
            return states if len(states) == 26 and all(state in done for state in states.values()) else None
        states = system.wait(finished, timeout=900, what="every proof_priority task to finish")
    # A real task process can fail on a loaded machine (routine ones are not retried, so each has one job);
    # what this test is about is the order podq released them in, and that urgent ran.
    assert states["gate"] == "success" and states["urgent"] == "success", states
    times = seen
    assert times["urgent"][0] == 100 and times["routine_00"][0] == 1, "priority_weight reached the job records"
    _, urgent_arrived, urgent_left = times["urgent"]
    waiting = {task: left for task, (_, arrived, left) in times.items()
               if task.startswith("routine_") and arrived < urgent_arrived < left}
    assert waiting, f"no routine task was still waiting when urgent arrived: the test built no backlog ({times})"
    jumped = sorted(task for task, left in waiting.items() if left < urgent_left)
    assert not jumped, f"routine tasks left the line before urgent, which arrived while they waited: {jumped}"
    # The pods, as the API server saw them: urgent's before those of the routine tasks it passed.
    created = [entry["name"] for entry in world["admin"].creates() if entry["name"].startswith("proof-priority-")]
    urgent_at = next(index for index, name in enumerate(created) if name.startswith("proof-priority-urgent-"))
    passed = [name for name in created[urgent_at + 1:] if name.startswith("proof-priority-routine-")]
    assert len(passed) >= len(waiting), (created, sorted(waiting))
