"""Which ends are launch failures (the pod never started), and which of them the policy retries."""
from __future__ import annotations

import orjson

from podq.shared.records import FailureDetails
from podq.shared.states import State
from podq.watcher.classify import classify, never_started
from podq.watcher.events import EventType, decode_line, pod_view
from podq.watcher.relaunch import LaunchPolicy
from podq.watcher.tracker import Intent, Tracker

from tests.support.pods import SAMPLES, raw_pod

NOW = 1_800_000_000.0
NEVER_RAN = {"phase": "Failed", "reason": "Evicted", "message": "low on ephemeral-storage",
             "containerStatuses": [{"name": "base", "state": {"terminated": {
                 "exitCode": 137, "reason": "ContainerStatusUnknown"}}}]}


def view(status: dict):
    return pod_view(raw_pod(status))


def test_a_pod_never_started_unless_a_main_container_ran_or_it_was_ready_or_an_init_container_failed():
    assert never_started(view(NEVER_RAN))
    assert never_started(view(SAMPLES["container_creating"]))
    assert not never_started(view(SAMPLES["evicted"]))        # evicted after it ran: it was Ready
    assert not never_started(view(SAMPLES["failed_error"]))   # the main container ran and exited 1
    assert not never_started(view(SAMPLES["init_failed"]))    # the task's own init container failed


def end(tracker: Tracker, kind: str, status: dict, **options):
    event = decode_line(orjson.dumps({"type": kind, "object": raw_pod(status, **options)}))
    return tracker.apply(event.type, event.pod, classify(event.type, event.pod), now=NOW)


def test_ends_before_the_pod_ran_are_launch_failures_and_after_it_ran_are_not():
    tracker = Tracker()
    end(tracker, "ADDED", SAMPLES["container_creating"])
    assert end(tracker, "MODIFIED", NEVER_RAN)[-1].launch_failure
    tracker = Tracker()
    end(tracker, "ADDED", SAMPLES["container_creating"])
    deleted = end(tracker, "DELETED", SAMPLES["container_creating"], deleting=True)[-1]
    assert deleted.state is State.LOST and deleted.launch_failure
    tracker = Tracker()
    end(tracker, "ADDED", SAMPLES["running"])
    assert not end(tracker, "MODIFIED", NEVER_RAN)[-1].launch_failure   # seen Running: it started
    tracker = Tracker()
    end(tracker, "ADDED", SAMPLES["container_creating"])
    end(tracker, "MODIFIED", SAMPLES["image_pull_backoff"])
    revoked = end(tracker, "MODIFIED", SAMPLES["image_pull_backoff"], labels={"airflow_pod_revoked": "True"})[-1]
    assert revoked.state is State.REVOKED and not revoked.launch_failure


def test_the_policy_skips_excluded_container_reasons_and_retries_zero():
    intent = Intent(ref="ns/p", identity=None, state=State.FAILED, launch_failure=True,
                    details=FailureDetails(container_reason="ContainerStatusUnknown"))
    assert LaunchPolicy(retries=1).may(intent)
    assert not LaunchPolicy(retries=0).may(intent)
    intent.details = FailureDetails(container_reason="Error")
    assert not LaunchPolicy(retries=1).may(intent)
    assert LaunchPolicy(retries=1, excluded=frozenset()).may(intent)
