"""Records and their codec: round trips and the one decode error."""
from __future__ import annotations

import msgpack
import pytest

from podq.shared.errors import DecodeError
from podq.shared.records import (ControlRecord, FailureDetails, KubernetesJob, KubernetesResults,
                                 KubernetesWatch, TaskKey)
from podq.shared.states import ControlOp, Source, State

KEY = TaskKey(dag_id="etl", task_id="load", run_id="manual__1", try_number=2, map_index=3)


def test_job_round_trip_and_derived_id():
    job = KubernetesJob.new(scheduler_id="s1", key=KEY, command=["run", "it"], namespace="ns",
                            pod_template="big", pod_override={"spec": {"priorityClassName": "x"}})
    again = KubernetesJob.decode(job.encode())
    assert again == job
    other_try = KubernetesJob.new(scheduler_id="s1", key=TaskKey(**{**KEY.to_wire(), "try_number": 3}))
    other_scheduler = KubernetesJob.new(scheduler_id="s2", key=KEY)
    assert len({job.job_id, other_try.job_id, other_scheduler.job_id}) == 3


def test_job_id_may_be_omitted_but_not_wrong():
    wire = msgpack.unpackb(KubernetesJob.new(scheduler_id="s1", key=KEY).encode())
    del wire["job_id"]
    assert KubernetesJob.decode(msgpack.packb(wire)).job_id == KubernetesJob.new(scheduler_id="s1", key=KEY).job_id
    wire["job_id"] = "0" * 32
    with pytest.raises(DecodeError, match=r"job\.job_id: does not match"):
        KubernetesJob.decode(msgpack.packb(wire))


@pytest.mark.parametrize("mutate, message", [
    (lambda w: w.pop("scheduler_id"), r"job\.scheduler_id: required field is missing"),
    (lambda w: w["task_key"].update(try_number="2"), r"job\.task_key\.try_number: expected an integer, got string"),
    (lambda w: w.update(command="echo hi"), r"job\.command: expected an array of strings, got string"),
    (lambda w: w.update(command=["ok", 3]), r"job\.command\[1\]: expected a string, got integer"),
    (lambda w: w.update(schema="2.0"), r"job\.schema: major version 2 is not supported"),
    (lambda w: w.update(schema="one"), r"job\.schema: expected 'MAJOR\.MINOR'"),
    (lambda w: w.update(kind="result"), r"job\.kind: expected 'job', got 'result'"),
    (lambda w: w.update(pod_override=[1]), r"job\.pod_override: expected a map, got array"),
])
def test_bad_job_fields_name_the_field(mutate, message):
    wire = msgpack.unpackb(KubernetesJob.new(scheduler_id="s1", key=KEY).encode())
    mutate(wire)
    with pytest.raises(DecodeError, match=message):
        KubernetesJob.decode(msgpack.packb(wire))


@pytest.mark.parametrize("payload, message", [
    (b"\xc1", "not valid msgpack"),
    (msgpack.packb([1, 2]), "expected a map, got array"),
    (12, "expected msgpack bytes, got integer"),
    (b"\x81\xa1a\xda\xff\xff", "not valid msgpack"),
])
def test_garbage_is_one_error_type(payload, message):
    with pytest.raises(DecodeError, match=message):
        KubernetesJob.decode(payload)


def test_oversized_record_is_refused():
    job = KubernetesJob.new(scheduler_id="s1", key=KEY, command=["x" * 60000] * 5)
    with pytest.raises(DecodeError, match="over the 262144-byte limit"):
        KubernetesJob.decode(job.encode())


def test_newer_minor_version_with_unknown_fields_is_accepted():
    wire = msgpack.unpackb(KubernetesJob.new(scheduler_id="s1", key=KEY).encode())
    wire.update(schema="1.7", priority_hint="high")
    assert KubernetesJob.decode(msgpack.packb(wire)).key == KEY


def test_result_round_trip_and_event_ids():
    details = FailureDetails(pod_status="Failed", container_reason="OOMKilled", exit_code=137,
                             container_type="main", container_name="base")
    watch = KubernetesWatch.build(job_id="j1", scheduler_id="s1", key=KEY, source=Source.WATCHER,
                                  state=State.FAILED, pod_name="p", namespace="ns",
                                  annotations={"a": "b"}, resource_version="42", failure_details=details)
    again = KubernetesWatch.decode(watch.encode())
    assert again == watch and again.terminal and again.event_id == "j1:failed"
    adopted = KubernetesWatch.build(job_id="j1", scheduler_id="old", key=KEY, source=Source.WORKER,
                                    state=State.ADOPTED)
    assert adopted.event_id == "j1:adopted:old" and not adopted.terminal
    result = KubernetesResults.from_watch("1-0", again)
    assert (result.key, result.state, result.failure_details) == (KEY, State.FAILED, details)


def test_control_record_rules():
    revoke = ControlRecord(op=ControlOp.REVOKE, scheduler_id="s1", job_id="j1")
    assert ControlRecord.decode(revoke.encode()) == revoke
    wire = msgpack.unpackb(ControlRecord(op=ControlOp.ADOPT, scheduler_id="s1", new_scheduler_id="s2").encode())
    del wire["new_scheduler_id"]
    with pytest.raises(DecodeError, match=r"control\.new_scheduler_id: required"):
        ControlRecord.decode(msgpack.packb(wire))
    wire = msgpack.unpackb(revoke.encode())
    wire["op"] = "explode"
    with pytest.raises(DecodeError, match=r"control\.op: unknown value 'explode'"):
        ControlRecord.decode(msgpack.packb(wire))


def test_result_fields_are_read_in_the_documented_order():
    wire = msgpack.unpackb(KubernetesWatch.build(job_id="0" * 32, scheduler_id="s", key=KEY, source=Source.WATCHER,
                                                 state=State.FAILED).encode())
    del wire["event_id"]
    wire["failure_details"] = "broken"  # later in the table than event_id
    with pytest.raises(DecodeError, match=r"^result\.event_id: required field is missing$"):
        KubernetesWatch.decode(msgpack.packb(wire))
