"""Live pending reasons: a Pending pod's reason, each change a ``pending`` result, at most one per interval."""
from __future__ import annotations

import orjson

from podq.shared.records import KubernetesWatch, PendingReason
from podq.shared.states import State
from podq.watcher.classify import classify, why_pending
from podq.watcher.events import decode_line, pod_view
from podq.watcher.publishing import to_items
from podq.watcher.tracker import Tracker

from tests.support.pods import JOB, SAMPLES, raw_pod

NOW = 1_800_000_000.0


def step(tracker: Tracker, kind: str, sample: str, *, now: float, rv: str):
    raw = raw_pod(SAMPLES[sample])
    raw["metadata"]["resourceVersion"] = rv
    event = decode_line(orjson.dumps({"type": kind, "object": raw}))
    return tracker.apply(event.type, event.pod, classify(event.type, event.pod), now=now)


def test_the_reason_comes_from_the_scheduler_or_the_first_waiting_container():
    assert why_pending(pod_view(raw_pod(SAMPLES["created"]))) is None
    unscheduled = why_pending(pod_view(raw_pod(SAMPLES["unschedulable"])))
    assert unscheduled.reason == "Unschedulable" and unscheduled.message.startswith("0/3 nodes are available")
    assert why_pending(pod_view(raw_pod(SAMPLES["container_creating"]))).reason == "ContainerCreating"
    backoff = why_pending(pod_view(raw_pod(SAMPLES["image_pull_backoff"])))
    assert backoff.reason == "ImagePullBackOff" and backoff.message.startswith("base: Back-off pulling image")


def test_each_change_is_a_pending_result_with_its_reason_and_own_event_id():
    tracker = Tracker(reason_interval=2.0)
    first = step(tracker, "ADDED", "created", now=NOW, rv="10")
    assert [(i.state, i.pending_reason, i.again) for i in first] == [(State.PENDING, None, None)]
    later = step(tracker, "MODIFIED", "unschedulable", now=NOW + 3, rv="11")
    assert [i.state for i in later] == [State.PENDING]
    assert later[0].pending_reason.reason == "Unschedulable" and later[0].again == "11"
    # The same reason again publishes nothing.
    assert step(tracker, "MODIFIED", "unschedulable", now=NOW + 9, rv="12") == []
    results = [item.result for item in to_items(first + later)]
    assert [r.event_id for r in results] == [f"{JOB}:pending", f"{JOB}:pending:11"]
    assert results[1].resource_version == "11"
    assert KubernetesWatch.decode(results[1].encode()).pending_reason == later[0].pending_reason


def test_changes_within_the_interval_are_held_and_the_latest_one_published_when_it_ends():
    tracker = Tracker(reason_interval=2.0)
    step(tracker, "ADDED", "unschedulable", now=NOW, rv="10")
    assert step(tracker, "MODIFIED", "container_creating", now=NOW + 0.5, rv="11") == []
    assert step(tracker, "MODIFIED", "image_pull_backoff", now=NOW + 1.0, rv="12") == []
    assert tracker.held_reasons(now=NOW + 1.5) == []
    due = tracker.held_reasons(now=NOW + 2.0)
    assert [(i.pending_reason.reason, i.resource_version) for i in due] == [("ImagePullBackOff", "12")]
    assert tracker.held_reasons(now=NOW + 10) == []


def test_a_held_reason_is_dropped_when_the_pod_moves_on_or_returns_to_the_published_one():
    tracker = Tracker(reason_interval=2.0)
    step(tracker, "ADDED", "unschedulable", now=NOW, rv="10")
    step(tracker, "MODIFIED", "container_creating", now=NOW + 0.5, rv="11")
    step(tracker, "MODIFIED", "unschedulable", now=NOW + 1.0, rv="12")
    assert tracker.held_reasons(now=NOW + 5) == []
    step(tracker, "MODIFIED", "container_creating", now=NOW + 5.5, rv="13")   # published: interval over
    step(tracker, "MODIFIED", "image_pull_backoff", now=NOW + 6, rv="14")     # held
    running = step(tracker, "MODIFIED", "running", now=NOW + 6.5, rv="15")
    assert [i.state for i in running] == [State.RUNNING]
    assert tracker.held_reasons(now=NOW + 20) == []


def test_fingerprints_tell_reasons_apart_by_reason_and_message():
    a = PendingReason(reason="Unschedulable", message="0/3 nodes")
    assert a.fingerprint() == PendingReason(reason="Unschedulable", message="0/3 nodes").fingerprint()
    assert a.fingerprint() != PendingReason(reason="Unschedulable", message="0/4 nodes").fingerprint()
    assert a.fingerprint() != PendingReason(reason="Unschedulable").fingerprint()


def notice(reason: str, message: str, *, type_: str = "Warning", count: int = 1, rv: str = "900"):
    from podq.watcher.notices import notice_of
    return notice_of({"metadata": {"namespace": "default", "resourceVersion": rv},
                      "involvedObject": {"kind": "Pod", "namespace": "default", "name": "dag-task-x"},
                      "type": type_, "reason": reason, "message": message, "count": count})


def test_an_event_about_a_pending_pod_is_a_reason_and_a_recount_is_kept_once():
    from podq.watcher.notices import notice_of
    assert notice_of({"involvedObject": {"kind": "Node", "name": "n1"}}) is None
    tracker = Tracker(reason_interval=2.0)
    step(tracker, "ADDED", "created", now=NOW, rv="10")
    mount = notice("FailedMount", 'MountVolume.SetUp failed for volume "v" : configmap "c" not found')
    intents = tracker.noted(mount, now=NOW + 3)
    assert [(i.pending_reason.reason, i.again) for i in intents] == [("FailedMount", "event-900")]
    assert tracker.noted(notice("FailedMount", mount.message, count=2, rv="901"), now=NOW + 9) == []
    assert tracker.noted(notice("Scheduled", "assigned", type_="Normal"), now=NOW + 9) == []   # not telling
    record = tracker.records["default/dag-task-x"]
    assert [n.line() for n in record.notices] == [
        'Warning FailedMount: MountVolume.SetUp failed for volume "v" : configmap "c" not found (x2)',
        "Normal Scheduled: assigned"]


def test_a_job_that_never_ran_fails_with_its_pods_last_events_and_events_before_the_pod_count():
    tracker = Tracker(reason_interval=2.0)
    tracker.noted(notice("FailedScheduling", "0/3 nodes are available"), now=NOW)   # before the pod
    step(tracker, "ADDED", "created", now=NOW, rv="10")
    for n in range(7):
        tracker.noted(notice("Failed", f"attempt {n}", rv=str(1000 + n)), now=NOW + n)
    ended = step(tracker, "DELETED", "created", now=NOW + 10, rv="11")
    details = ended[-1].details
    assert ended[-1].state is State.LOST and len(details.events) == 5
    assert details.events[-1] == "Warning Failed: attempt 6"
    assert KubernetesWatch.decode(to_items(ended)[-1].result.encode()).failure_details.events == details.events


def test_a_job_that_ran_fails_without_events():
    tracker = Tracker()
    step(tracker, "ADDED", "running", now=NOW, rv="10")
    tracker.noted(notice("BackOff", "Back-off restarting failed container"), now=NOW)
    ended = step(tracker, "MODIFIED", "failed_error", now=NOW + 1, rv="11")
    assert ended[-1].state is State.FAILED and ended[-1].details.events is None
