"""Classification of every pod situation in pod-status-samples.json, as podq states."""
from __future__ import annotations

import orjson
import pytest

from podq.shared import naming
from podq.shared.states import State
from podq.watcher.classify import DEFAULT_FATAL_REASONS, classify, deadline_verdict, fatal_container
from podq.watcher.events import EventType, decode_line, pod_view
from tests.support.pods import JOB, KEY, SAMPLES, raw_pod


def verdict_for(sample: str, kind: EventType = EventType.MODIFIED, **options):
    pod = pod_view(raw_pod(SAMPLES[sample], **options))
    return classify(kind, pod, fatal_reasons=DEFAULT_FATAL_REASONS)


# sample → (podq state, container reason in the failure details or None)
EXPECTED = {
    "created": (State.PENDING, None),
    "unschedulable": (State.PENDING, None),
    "container_creating": (State.PENDING, None),
    "err_image_pull": (State.FAILED, "ErrImagePull"),
    "pull_qps": (State.PENDING, None),
    "image_pull_backoff": (State.PENDING, None),
    "create_container_config_error": (State.FAILED, "CreateContainerConfigError"),
    "invalid_image_name": (State.FAILED, "InvalidImageName"),
    "init_running": (State.PENDING, None),
    "init_failed": (State.FAILED, "Error"),
    "provider_failed": (State.FAILED, None),
    "running": (State.RUNNING, None),
    "succeeded": (State.SUCCEEDED, None),
    "failed_error": (State.FAILED, "Error"),
    "failed_oom": (State.FAILED, "OOMKilled"),
    "evicted": (State.FAILED, None),
}


def test_every_sample_has_an_expectation():
    assert set(EXPECTED) == set(SAMPLES)


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_classification(sample):
    state, container_reason = EXPECTED[sample]
    verdict = verdict_for(sample)
    assert verdict.state is state
    if state is State.FAILED:
        assert verdict.details is not None
        assert verdict.details.container_reason == container_reason
    else:
        assert verdict.details is None


def test_failure_details_of_an_init_container_come_first():
    details = verdict_for("init_failed").details
    assert details.container_type == "init"
    assert details.container_state == "terminated"
    assert details.exit_code == 1
    assert details.pod_status == "Failed"


def test_failure_details_of_oom():
    details = verdict_for("failed_oom").details
    assert (details.container_name, details.exit_code, details.container_type) == ("base", 137, "main")


def test_provider_failed_keeps_the_pod_reason_and_message():
    details = verdict_for("provider_failed").details
    assert details.pod_reason == "ProviderFailed"
    assert details.pod_message


def test_evicted_keeps_the_pod_reason():
    assert verdict_for("evicted").details.pod_reason == "Evicted"


def test_failed_pod_without_a_failing_container_falls_back_to_the_last_waiting():
    status = {"phase": "Failed", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "state": {"waiting": {"reason": "ContainerCreating"}}},
        {"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}}]}
    verdict = classify(EventType.MODIFIED, pod_view(raw_pod(status)))
    assert verdict.state is State.FAILED
    assert (verdict.details.container_name, verdict.details.container_state) == ("c", "waiting")


def test_non_zero_exit_with_completed_reason_is_not_the_culprit():
    status = {"phase": "Failed", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 2, "reason": "Completed"}}},
        {"name": "b", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}
    details = classify(EventType.MODIFIED, pod_view(raw_pod(status))).details
    assert (details.container_name, details.exit_code) == ("b", 3)


def test_fatal_reason_only_in_the_first_main_container():
    status = {"phase": "Pending", "containerStatuses": [
        {"name": "base", "state": {"waiting": {"reason": "ContainerCreating"}}},
        {"name": "sidecar", "state": {"waiting": {"reason": "InvalidImageName"}}}]}
    assert classify(EventType.MODIFIED, pod_view(raw_pod(status))).state is State.PENDING
    status["containerStatuses"].reverse()
    assert classify(EventType.MODIFIED, pod_view(raw_pod(status))).state is State.FAILED


def test_fatal_reason_in_any_init_container():
    status = {"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "i2", "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret"}}}],
        "containerStatuses": [{"name": "base", "state": {"waiting": {"reason": "PodInitializing"}}}]}
    verdict = classify(EventType.MODIFIED, pod_view(raw_pod(status)))
    assert verdict.state is State.FAILED
    assert verdict.details.container_name == "i2"


def test_fatal_list_is_configurable():
    pod = pod_view(raw_pod(SAMPLES["image_pull_backoff"]))
    assert fatal_container(pod, DEFAULT_FATAL_REASONS) is None
    assert fatal_container(pod, ("ImagePullBackOff",)) == "ImagePullBackOff"
    assert classify(EventType.MODIFIED, pod_view(raw_pod(SAMPLES["err_image_pull"])), fatal_reasons=()).state \
        is State.PENDING


def test_revoked_pod_is_revoked_whatever_its_phase():
    for sample in ("running", "succeeded", "created"):
        verdict = verdict_for(sample, labels={naming.POD_REVOKED: "True"})
        assert verdict.state is State.REVOKED


def test_pending_deleted_is_lost_unless_the_ledger_says_revoked():
    verdict = verdict_for("container_creating", EventType.DELETED, deleting=True)
    assert verdict.state is State.LOST and verdict.ledger_decides and verdict.gone


def test_running_deleted_is_failed():
    verdict = verdict_for("running", EventType.DELETED, deleting=True)
    assert verdict.state is State.FAILED and verdict.gone
    assert verdict.details.reason == "PodDeleted"


def test_running_with_a_deletion_timestamp_is_still_running():
    assert verdict_for("running", deleting=True).state is State.RUNNING


def test_leaving_the_watch_ends_the_job_by_the_pods_status():
    # No later event of a pod that left the selector comes: its status now is the job's end.
    done = {naming.EXECUTOR_DONE: "True"}
    assert verdict_for("succeeded", EventType.DELETED, labels=done).state is State.SUCCEEDED
    failed = verdict_for("failed_error", EventType.DELETED, labels=done)
    assert failed.state is State.FAILED and failed.details.pod_status == "Failed"
    for sample in ("running", "container_creating"):
        verdict = verdict_for(sample, EventType.DELETED, labels=done)
        assert (verdict.state, verdict.details.reason, verdict.note) == (State.LOST, "LeftTheWatch", "marked done")
        assert verdict.gone and verdict.ledger_decides
        assert f"was labelled {naming.EXECUTOR_DONE}=True while" in verdict.details.message
    # The watch's DELETED carries the pod before the change: done or relabelled cannot be told apart.
    relabelled = verdict_for("running", EventType.DELETED)
    assert (relabelled.state, relabelled.details.reason, relabelled.note) == (State.LOST, "LeftTheWatch",
                                                                                "left the watch")
    assert "left podq's label selector" in relabelled.details.message


def test_succeeded_and_failed_deleted_keep_their_outcome():
    assert verdict_for("succeeded", EventType.DELETED, deleting=True).state is State.SUCCEEDED
    assert verdict_for("failed_error", EventType.DELETED, deleting=True).state is State.FAILED


def test_unknown_phase_warns_and_publishes_nothing():
    verdict = classify(EventType.MODIFIED, pod_view(raw_pod({"phase": "Unknown"})))
    assert verdict.state is None and verdict.warn
    deleted = classify(EventType.DELETED, pod_view(raw_pod({"phase": "Unknown"}, deleting=True)))
    assert deleted.state is State.LOST and deleted.ledger_decides


def test_deadline_verdict_names_the_reason():
    pod = pod_view(raw_pod(SAMPLES["unschedulable"]))
    verdict = deadline_verdict(pod, waited=700, deadline=600)
    assert verdict.state is State.FAILED
    assert verdict.details.reason == "PendingDeadlineExceeded"
    assert "Unschedulable" in verdict.details.message
    backoff = deadline_verdict(pod_view(raw_pod(SAMPLES["image_pull_backoff"])), waited=700, deadline=600)
    assert "ImagePullBackOff" in backoff.details.message


def test_decode_line_reads_identity_and_kinds():
    line = orjson.dumps({"type": "MODIFIED", "object": raw_pod(SAMPLES["running"])})
    event = decode_line(line)
    assert event.type is EventType.MODIFIED and event.resource_version == "17"
    identity = event.pod.identity
    assert (identity.job_id, identity.scheduler_id, identity.key) == (JOB, "sched", KEY)
    assert event.pod.ref == "default/dag-task-x"
    bookmark = decode_line(b'{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"99"}}}')
    assert bookmark.type is EventType.BOOKMARK and bookmark.resource_version == "99" and bookmark.pod is None
    error = decode_line(b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"old"}}')
    assert (error.error.code, error.error.reason) == (410, "Expired")


def test_decode_line_rejects_garbage():
    from podq.watcher.events import BadEvent
    for line in (b"not json", b"[1]", b'{"type":"NOPE","object":{}}', b'{"type":"ADDED","object":{}}'):
        with pytest.raises(BadEvent):
            decode_line(line)


def test_pod_without_podq_annotations_has_no_identity():
    raw = raw_pod(SAMPLES["running"])
    raw["metadata"]["annotations"] = {}
    assert pod_view(raw).identity is None
