"""Pod names, job ids and label values."""
from __future__ import annotations

import re

from podq.shared.naming import (derive_job_id, is_dns_1123_label, pod_annotations, pod_labels,
                                pod_name_for, safe_label_value)
from podq.shared.records import TaskKey

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def key(**fields) -> TaskKey:
    return TaskKey(**{"dag_id": "dag", "task_id": "task", "run_id": "run", **fields})


def test_pod_names_are_dns_labels_for_awkward_ids():
    awkward = [key(), key(dag_id="D" * 300, task_id="T" * 300), key(dag_id="数据", task_id="任务"),
               key(dag_id="--.._", task_id="__"), key(dag_id="a.b", task_id="c_d")]
    for k in awkward:
        name = pod_name_for(derive_job_id("s", k), k)
        assert is_dns_1123_label(name), name


def test_pod_names_differ_where_ids_collide_after_slugging():
    a, b = key(dag_id="数据"), key(dag_id="任务")
    names = {pod_name_for(derive_job_id("s", k), k) for k in (a, b, key(try_number=2), key(map_index=0))}
    assert len(names) == 4


def test_long_names_keep_the_hash():
    k = key(dag_id="x" * 100)
    name = pod_name_for(derive_job_id("s", k), k)
    assert len(name) == 63 and name.endswith(derive_job_id("s", k)[:16])


def test_safe_label_values():
    assert safe_label_value("simple-value_1.0") == "simple-value_1.0"
    for raw in ("has space", "x" * 70, "-leading", "ünïcode", "manual__2024-01-01T00:00:00+00:00"):
        safe = safe_label_value(raw)
        assert LABEL_VALUE.match(safe) and len(safe) <= 63, (raw, safe)
        assert safe != raw
    assert safe_label_value("a b") != safe_label_value("ab")


def test_labels_sanitised_annotations_raw():
    k = key(run_id="manual__2024-01-01T00:00:00+00:00", map_index=4)
    labels = pod_labels(job_id="j" * 32, scheduler_id="sched one", key=k)
    annotations = pod_annotations(job_id="j" * 32, scheduler_id="sched one", key=k)
    assert all(LABEL_VALUE.match(value) for value in labels.values())
    assert labels["kubernetes_executor"] == "True" and labels["map_index"] == "4"
    assert annotations["run_id"] == k.run_id and annotations["podq.io/scheduler-id"] == "sched one"
    assert "map_index" not in pod_labels(job_id="j", scheduler_id="s", key=key())


def test_pod_names_lower_case_ascii_letters_only():
    # str.lower() would give "kelvin" and "i\u0307stanbul"; the rule keeps only ASCII a-z.
    k = key(dag_id="\u212aelvin", task_id="\u0130stanbul-ABC")
    assert pod_name_for("0" * 32, k) == "elvin-stanbul-abc-0000000000000000"


def test_a_launch_id_makes_each_launch_of_a_try_its_own_job_and_pod():
    plain = key(try_number=2)
    first, second = key(try_number=2, launch_id="launch-1"), key(try_number=2, launch_id="launch-2")
    ids = {derive_job_id("s", plain), derive_job_id("s", first), derive_job_id("s", second)}
    assert len(ids) == 3
    assert derive_job_id("s", first) == derive_job_id("s", key(try_number=2, launch_id="launch-1"))
    assert pod_name_for(derive_job_id("s", first), first) != pod_name_for(derive_job_id("s", second), second)
    # The launch is an annotation (raw), never a label; a key without one has no such annotation.
    job_id = derive_job_id("s", first)
    assert pod_annotations(job_id=job_id, scheduler_id="s", key=first)["podq.io/launch-id"] == "launch-1"
    assert "podq.io/launch-id" not in pod_annotations(job_id=job_id, scheduler_id="s", key=plain)
    assert "podq.io/launch-id" not in pod_labels(job_id=job_id, scheduler_id="s", key=first)
