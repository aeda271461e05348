"""Pod names and label values: DNS-1123, length, unicode, collisions (shared/naming.py, used by workers)."""
from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys

from podq.shared import naming
from podq.shared.records import TaskKey

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def name_for(scheduler="s", **key):
    task_key = TaskKey(**{"dag_id": "dag", "task_id": "task", "run_id": "run", **key})
    return naming.pod_name_for(naming.derive_job_id(scheduler, task_key), task_key)


def test_names_are_dns_1123_and_at_most_63_characters():
    cases = [{}, {"dag_id": "d" * 250, "task_id": "t" * 250}, {"dag_id": "Ünïcødé_DAG", "task_id": "タスク"},
             {"dag_id": "---", "task_id": "..."}, {"dag_id": "a.b_c", "task_id": "UPPER"},
             {"dag_id": "x" * 62, "task_id": "-"}]
    for case in cases:
        name = name_for(**case)
        assert naming.is_dns_1123_label(name), (case, name)
        assert len(name) <= 63


def test_names_are_deterministic_and_keep_a_readable_slug():
    # Another interpreter with another hash seed derives the same name: nothing per-process goes in.
    program = ("from podq.shared import naming; from podq.shared.records import TaskKey; "
               "key = TaskKey(dag_id='dag', task_id='task', run_id='run'); "
               "print(naming.pod_name_for(naming.derive_job_id('s', key), key))")
    names = {subprocess.run([sys.executable, "-c", program], env={**os.environ, "PYTHONHASHSEED": seed},
                            capture_output=True, text=True, check=True).stdout.strip() for seed in ("1", "2")}
    assert names == {name_for()}
    assert name_for().startswith("dag-task-")


def test_try_number_map_index_run_and_scheduler_give_distinct_names():
    names = {name_for(try_number=t, map_index=m, run_id=r, scheduler=s)
             for t, m, r, s in itertools.product((1, 2), (-1, 0, 1), ("r1", "r2"), ("s1", "s2"))}
    assert len(names) == 2 * 3 * 2 * 2


def test_long_and_unicode_ids_that_share_a_slug_do_not_collide():
    long_ids = {name_for(dag_id="d" * 100, task_id="t" * 100 + str(n)) for n in range(500)}
    unicode_ids = {name_for(dag_id="データ", task_id=f"タスク{chr(0x30A0 + n)}") for n in range(90)}
    assert len(long_ids) == 500 and len(unicode_ids) == 90
    assert all(name.startswith("podq-") for name in unicode_ids)


def test_label_values_are_valid_and_changed_values_get_a_hash():
    for raw in ("simple", "with space", "x" * 100, "ünï", "-edge-", "a/b:c", ""):
        safe = naming.safe_label_value(raw)
        assert len(safe) <= 63 and LABEL_VALUE.match(safe), (raw, safe)
    assert naming.safe_label_value("simple") == "simple"
    assert naming.safe_label_value("with space") != naming.safe_label_value("withspace")
    assert naming.safe_label_value("x" * 100) != naming.safe_label_value("x" * 101)


def test_labels_are_sanitized_and_annotations_keep_the_raw_value():
    key = TaskKey(dag_id="my dag/ü", task_id="t", run_id="manual__2024-01-01T00:00:00+00:00", map_index=3)
    labels = naming.pod_labels(job_id="j" * 32, scheduler_id="sched 1", key=key)
    annotations = naming.pod_annotations(job_id="j" * 32, scheduler_id="sched 1", key=key)
    assert all(LABEL_VALUE.match(value) and len(value) <= 63 for value in labels.values())
    assert annotations[naming.DAG_ID] == "my dag/ü"
    assert annotations[naming.RUN_ID] == key.run_id
    assert annotations[naming.SCHEDULER_ID_KEY] == "sched 1"
    assert labels[naming.MAP_INDEX] == "3" and labels[naming.KUBERNETES_EXECUTOR] == "True"
