"""Realistic event sequences through classification and the tracker: what gets published."""
from __future__ import annotations

import orjson

from podq.shared import naming
from podq.shared.states import State
from podq.watcher.classify import classify
from podq.watcher.events import EventType, decode_line, pod_view
from podq.watcher.tracker import FORGET, PodRecord, Tracker

from tests.support.pods import SAMPLES, raw_pod

NOW = 1_800_000_000.0


def feed(tracker: Tracker, steps, *, now: float = NOW):
    """Each step (type, sample, options) as a watch line; the published states and stored changes."""
    published, stored = [], []
    for kind, sample, options in steps:
        line = orjson.dumps({"type": kind, "object": raw_pod(SAMPLES[sample], **options)})
        event = decode_line(line)
        for intent in tracker.apply(event.type, event.pod, classify(event.type, event.pod), now=now):
            if intent.state is not None:
                published.append(intent.state)
            if intent.stored is not None:
                stored.append("forget" if intent.stored == FORGET else PodRecord.decode(intent.stored).state)
    return published, stored


def test_a_pod_through_its_life_publishes_each_state_once():
    tracker = Tracker()
    published, _ = feed(tracker, [("ADDED", "created", {}), ("MODIFIED", "unschedulable", {}),
                                  ("MODIFIED", "container_creating", {}), ("MODIFIED", "running", {}),
                                  ("MODIFIED", "running", {}), ("MODIFIED", "succeeded", {}),
                                  ("MODIFIED", "succeeded", {"deleting": True}),
                                  ("DELETED", "succeeded", {"deleting": True})])
    assert published == [State.PENDING, State.RUNNING, State.SUCCEEDED]
    assert len(tracker) == 0


def test_first_seen_running_gets_pending_first():
    published, _ = feed(Tracker(), [("ADDED", "running", {}), ("MODIFIED", "failed_oom", {})])
    assert published == [State.PENDING, State.RUNNING, State.FAILED]


def test_first_seen_terminal_publishes_only_the_terminal():
    published, stored = feed(Tracker(), [("ADDED", "failed_error", {})])
    assert published == [State.FAILED]
    assert stored == [State.FAILED]


def test_nothing_after_the_terminal_result():
    published, _ = feed(Tracker(), [("ADDED", "container_creating", {}), ("MODIFIED", "err_image_pull", {}),
                                    ("MODIFIED", "running", {}), ("MODIFIED", "succeeded", {})])
    assert published == [State.PENDING, State.FAILED]


def test_pending_pod_deleted_ends_lost_and_is_forgotten():
    tracker = Tracker()
    published, stored = feed(tracker, [("ADDED", "created", {}), ("MODIFIED", "created", {"deleting": True}),
                                       ("DELETED", "created", {"deleting": True})])
    assert published == [State.PENDING, State.LOST]
    assert stored[-1] == "forget" and len(tracker) == 0


def test_revoked_pod_ends_revoked_once():
    revoked = {"labels": {naming.POD_REVOKED: "True"}}
    published, _ = feed(Tracker(), [("ADDED", "running", {}), ("MODIFIED", "running", revoked),
                                    ("MODIFIED", "running", {**revoked, "deleting": True}),
                                    ("DELETED", "failed_error", {**revoked, "deleting": True})])
    assert published == [State.PENDING, State.RUNNING, State.REVOKED]


def test_running_pod_deleted_ends_failed():
    published, _ = feed(Tracker(), [("ADDED", "running", {}), ("MODIFIED", "running", {"deleting": True}),
                                    ("DELETED", "running", {"deleting": True})])
    assert published == [State.PENDING, State.RUNNING, State.FAILED]


def test_marked_done_after_the_terminal_result_publishes_nothing_more():
    tracker = Tracker()
    published, stored = feed(tracker, [("ADDED", "succeeded", {}),
                                       ("DELETED", "succeeded", {"labels": {naming.EXECUTOR_DONE: "True"}})])
    assert published == [State.SUCCEEDED]
    assert stored == [State.SUCCEEDED, "forget"]


def test_leaving_the_watch_before_the_terminal_result_ends_the_job():
    done = {"labels": {naming.EXECUTOR_DONE: "True"}}
    published, stored = feed(Tracker(), [("ADDED", "running", {}), ("DELETED", "running", done)])
    assert published == [State.PENDING, State.RUNNING, State.LOST]
    assert stored[-1] == "forget"
    published, _ = feed(Tracker(), [("ADDED", "running", {}), ("DELETED", "failed_error", done)])
    assert published == [State.PENDING, State.RUNNING, State.FAILED]


def test_terminal_result_asks_for_completion_unless_the_pod_is_gone():
    tracker = Tracker()
    pod = pod_view(raw_pod(SAMPLES["succeeded"]))
    [intent] = tracker.apply(EventType.MODIFIED, pod, classify(EventType.MODIFIED, pod), now=NOW)
    assert intent.complete
    gone = pod_view(raw_pod(SAMPLES["running"], deleting=True))
    intents = Tracker().apply(EventType.DELETED, gone, classify(EventType.DELETED, gone), now=NOW)
    assert [i.state for i in intents] == [State.FAILED] and not intents[-1].complete


def test_pending_deadline():
    tracker = Tracker()
    feed(tracker, [("ADDED", "unschedulable", {})])   # created 2026-01-01T00:00:00Z
    created = pod_view(raw_pod(SAMPLES["unschedulable"])).created_at
    assert tracker.overdue(now=created + 100, deadline=600) == []
    assert tracker.overdue(now=created + 10_000, deadline=0) == []
    [intent] = tracker.overdue(now=created + 601, deadline=600)
    assert intent.state is State.FAILED and intent.revoke_pod and not intent.complete
    assert "Unschedulable" in intent.details.message
    assert tracker.overdue(now=created + 900, deadline=600) == []
    published, _ = feed(tracker, [("MODIFIED", "unschedulable", {"labels": {naming.POD_REVOKED: "True"}})])
    assert published == []


def test_the_deadline_fails_the_overdue_pods_oldest_first_and_no_pod_twice():
    tracker = Tracker()
    created = pod_view(raw_pod(SAMPLES["unschedulable"])).created_at
    for n in range(5):   # five pods created a minute apart
        raw = raw_pod(SAMPLES["unschedulable"])
        raw["metadata"].update(name=f"pod-{n}", creationTimestamp=f"2026-01-01T00:0{n}:00Z")
        pod = pod_view(raw)
        tracker.apply(EventType.ADDED, pod, classify(EventType.ADDED, pod), now=created)
    assert [i.ref for i in tracker.overdue(now=created + 600 + 90, deadline=600)] == ["default/pod-0", "default/pod-1"]
    assert tracker.overdue(now=created + 600 + 90, deadline=600) == []
    assert [i.ref for i in tracker.overdue(now=created + 600 + 300, deadline=600)] == [
        "default/pod-2", "default/pod-3", "default/pod-4"]


def test_a_stored_pending_pod_keeps_its_deadline_after_a_restart():
    tracker = Tracker()
    feed(tracker, [("ADDED", "unschedulable", {})])
    created = pod_view(raw_pod(SAMPLES["unschedulable"])).created_at
    again = Tracker.from_stored({ref: record.encode() for ref, record in tracker.records.items()})
    assert again.overdue(now=created + 599, deadline=600) == []
    assert [i.state for i in again.overdue(now=created + 601, deadline=600)] == [State.FAILED]


def test_running_pods_are_never_overdue():
    tracker = Tracker()
    feed(tracker, [("ADDED", "running", {})])
    assert tracker.overdue(now=NOW + 10**6, deadline=1) == []


def test_relist_diff_ends_vanished_pods():
    tracker = Tracker()
    feed(tracker, [("ADDED", "running", {})])
    other = raw_pod(SAMPLES["succeeded"])
    other["metadata"]["name"] = "done-pod"
    pod = pod_view(other)
    tracker.apply(EventType.LISTED, pod, classify(EventType.LISTED, pod), now=NOW)
    intents = tracker.vanished(present=[])
    by_ref = {intent.ref: intent for intent in intents}
    assert by_ref["default/dag-task-x"].state is State.LOST and by_ref["default/dag-task-x"].ledger_decides
    assert by_ref["default/done-pod"].state is None and by_ref["default/done-pod"].stored == FORGET
    assert len(tracker) == 0


def test_records_survive_a_round_trip_through_redis_bytes():
    tracker = Tracker()
    _, stored = feed(tracker, [("ADDED", "container_creating", {})])
    raw = {ref: record.encode() for ref, record in tracker.records.items()}
    again = Tracker.from_stored(raw)
    record = again.records["default/dag-task-x"]
    original = tracker.records["default/dag-task-x"]
    assert record.state is State.PENDING and record.identity == original.identity
    assert record.pending_since == original.pending_since
    published, _ = feed(again, [("MODIFIED", "running", {}), ("MODIFIED", "succeeded", {})])
    assert published == [State.RUNNING, State.SUCCEEDED]


def test_the_launch_id_survives_the_pod_and_the_stored_record():
    from podq.shared.records import TaskKey
    from podq.watcher.events import PodIdentity

    key = TaskKey(dag_id="d", task_id="t", run_id="r", try_number=1, launch_id="launch-7")
    job_id = naming.derive_job_id("sched", key)
    pod = raw_pod(SAMPLES["running"])
    pod["metadata"]["annotations"] = naming.pod_annotations(job_id=job_id, scheduler_id="sched", key=key)
    event = decode_line(orjson.dumps({"type": "ADDED", "object": pod}))
    assert event.pod.identity.key == key
    record = PodRecord(state=State.RUNNING, identity=event.pod.identity)
    assert PodRecord.decode(record.encode()).identity.key == key
    # A record without a launch id stays nine items (as written before launch ids existed).
    plain = PodRecord(state=State.RUNNING, identity=PodIdentity(
        job_id="j", scheduler_id="sched", key=TaskKey(dag_id="d", task_id="t", run_id="r"), annotations={}))
    assert len(orjson.loads(plain.encode())) == 9
    assert PodRecord.decode(plain.encode()).identity.key.launch_id is None
