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
