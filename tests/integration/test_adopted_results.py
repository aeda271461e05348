"""A result moved by an adoption names its new owner: lua/lib/with_owner.lua against a real Valkey."""
from __future__ import annotations

from dataclasses import replace

import pytest

from podq.broker.store.scripts import _lua
from podq.shared.records import FailureDetails, KubernetesWatch, TaskKey
from podq.shared.states import Source, State

KEY = TaskKey(dag_id="d", task_id="t", run_id="r", map_index=3)


def result(**fields) -> KubernetesWatch:
    return replace(KubernetesWatch.build(job_id="0" * 32, scheduler_id="old", key=KEY, source=Source.WATCHER,
                                         state=State.FAILED), **fields)


@pytest.mark.parametrize("record", [
    result(),
    result(annotations={"a": "b", "scheduler_id": "old"}, pod_name="p", namespace="ns", resource_version="7",
           failure_details=FailureDetails(exit_code=2, message="x" * 30000)),
    result(scheduler_id="o" * 250, annotations={f"k{n}": "v" for n in range(40)}),
], ids=["plain", "details-and-a-lookalike-annotation", "long-owner-big-map"])
@pytest.mark.parametrize("owner", ["new", "n" * 40, "n" * 250])
def test_with_owner_replaces_only_the_scheduler_id(redis_client, record, owner):
    script = _lua("lib/with_owner.lua") + "\nreturn with_owner(ARGV[1], ARGV[2])"
    moved = redis_client.eval(script, 0, record.encode(), owner)
    assert KubernetesWatch.decode(moved) == replace(record, scheduler_id=owner)


def test_with_owner_leaves_what_is_not_a_result_alone(redis_client):
    script = _lua("lib/with_owner.lua") + "\nreturn with_owner(ARGV[1], ARGV[2])"
    for payload in (b"\x93\x01\x02\x03", b"\x81\xa1a\x01", b"\xc1", b"\x81\xacscheduler_id\x07"):
        assert redis_client.eval(script, 0, payload, "new") == payload
