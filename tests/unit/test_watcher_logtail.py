"""Which failures get the last lines of their pod's log (watcher/logtail.py), with a recording reader."""
from __future__ import annotations

from podq.shared.records import FailureDetails, TaskKey
from podq.shared.states import State
from podq.watcher.events import PodIdentity
from podq.watcher.logtail import add_log_tails
from podq.watcher.tracker import Intent

IDENTITY = PodIdentity(job_id="j", scheduler_id="s", key=TaskKey(dag_id="d", task_id="t", run_id="r"),
                       annotations={})
RAN = FailureDetails(pod_status="Failed", container_state="terminated", container_reason="Error", exit_code=1,
                     container_name="base")
NEVER_RAN = FailureDetails(pod_status="Pending", container_state="waiting", container_reason="ErrImagePull",
                           container_name="base", events=("Warning Failed: pull failed",))


def intent(state: State, details: FailureDetails | None, name: str = "p") -> Intent:
    return Intent(ref=f"ns/{name}", identity=IDENTITY, state=state, details=details)


def test_only_failures_whose_container_started_are_read_and_only_when_lines_are_asked_for():
    reads = []

    def read(namespace, pod, container, lines):
        reads.append((namespace, pod, container, lines))
        return [f"line {n}" for n in range(1, 11)]

    intents = [intent(State.FAILED, RAN, "ran"), intent(State.FAILED, NEVER_RAN, "never"),
               intent(State.SUCCEEDED, None, "ok"), intent(State.LOST, RAN, "lost"),
               intent(State.PENDING, None, "waits")]
    assert add_log_tails(intents, read=read, lines=0) == 0 and not reads
    assert add_log_tails(intents, read=read, lines=3) == 2
    assert reads == [("ns", "ran", "base", 3), ("ns", "lost", "base", 3)]
    assert intents[0].details.log_tail == ("line 8", "line 9", "line 10")
    assert intents[0].details.exit_code == 1 and intents[1].details == NEVER_RAN


def test_a_log_that_cannot_be_read_leaves_the_details_as_they_were():
    failed = intent(State.FAILED, RAN)
    assert add_log_tails([failed], read=lambda *args: None, lines=5) == 0
    assert failed.details == RAN


def test_no_more_lines_than_the_wire_allows_are_asked_for():
    asked = []
    add_log_tails([intent(State.FAILED, RAN)], read=lambda *args: asked.append(args[3]) or ["x"], lines=50_000)
    assert asked == [1000]
