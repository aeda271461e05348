"""Merge rules for pod_override onto a template (docs/pods.md)."""
from __future__ import annotations

import pytest

from podq.workers.errors import PodBuildError
from podq.workers.merge import merge


def pod(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"team": "a"}}, "spec": spec}


def test_containers_merge_by_name_and_keep_base_order():
    base = pod(containers=[{"name": "base", "image": "one", "args": ["a"]}, {"name": "side", "image": "s"}])
    override = {"spec": {"containers": [{"name": "side", "image": "s2"}, {"name": "base", "image": "two"},
                                        {"name": "extra", "image": "e"}]}}
    merged = merge(base, override)
    assert [c["name"] for c in merged["spec"]["containers"]] == ["base", "side", "extra"]
    assert merged["spec"]["containers"][0] == {"name": "base", "image": "two", "args": ["a"]}
    assert merged["spec"]["containers"][1]["image"] == "s2"


def test_env_merges_by_name_and_replaces_the_value():
    base = pod(containers=[{"name": "base", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
    override = {"spec": {"containers": [{"name": "base", "env": [{"name": "B", "value": "3"},
                                                                   {"name": "C", "value": "4"}]}]}}
    env = merge(base, override)["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]


def test_env_value_from_replaces_within_the_merged_item():
    base = pod(containers=[{"name": "base", "env": [{"name": "A", "value": "1"}]}])
    override = {"spec": {"containers": [{"name": "base", "env": [
        {"name": "A", "value": None, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}}
    env = merge(base, override)["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]


def test_volumes_init_containers_ports_and_mounts_use_the_api_merge_keys():
    base = pod(volumes=[{"name": "data", "emptyDir": {}}],
               initContainers=[{"name": "init", "image": "i1"}],
               containers=[{"name": "base", "ports": [{"containerPort": 80, "name": "http"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}])
    override = {"spec": {
        "volumes": [{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "cfg", "configMap": {"name": "c"}}],
        "initContainers": [{"name": "init", "image": "i2"}],
        "containers": [{"name": "base", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 9090}],
                        "volumeMounts": [{"name": "cfg", "mountPath": "/data", "readOnly": True},
                                         {"name": "cfg", "mountPath": "/etc/cfg"}]}]}}
    spec = merge(base, override)["spec"]
    assert spec["volumes"] == [{"name": "data", "emptyDir": {"medium": "Memory"}},
                               {"name": "cfg", "configMap": {"name": "c"}}]
    assert spec["initContainers"] == [{"name": "init", "image": "i2"}]
    base_c = spec["containers"][0]
    assert base_c["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 9090}]
    assert base_c["volumeMounts"] == [{"name": "cfg", "mountPath": "/data", "readOnly": True},
                                      {"name": "cfg", "mountPath": "/etc/cfg"}]


def test_scalars_and_unkeyed_lists_are_replaced():
    base = pod(containers=[{"name": "base", "command": ["a", "b"], "image": "x"}],
               tolerations=[{"key": "a"}], nodeSelector={"disk": "ssd", "zone": "1"}, priority=1)
    override = {"spec": {"containers": [{"name": "base", "command": ["c"]}], "tolerations": [{"key": "b"}],
                         "nodeSelector": {"zone": "2"}, "priority": 5}}
    spec = merge(base, override)["spec"]
    assert spec["containers"][0]["command"] == ["c"]
    assert spec["tolerations"] == [{"key": "b"}]
    assert spec["nodeSelector"] == {"disk": "ssd", "zone": "2"}
    assert spec["priority"] == 5


def test_null_removes_a_key_and_labels_merge():
    base = pod(containers=[{"name": "base"}], nodeSelector={"disk": "ssd"})
    merged = merge(base, {"metadata": {"labels": {"extra": "b"}}, "spec": {"nodeSelector": None}})
    assert "nodeSelector" not in merged["spec"]
    assert merged["metadata"]["labels"] == {"team": "a", "extra": "b"}


def test_inputs_are_not_changed():
    base = pod(containers=[{"name": "base", "env": [{"name": "A", "value": "1"}]}])
    override = {"spec": {"containers": [{"name": "base", "env": [{"name": "A", "value": "2"}]}]}}
    merge(base, override)
    assert base["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


def test_a_keyed_list_of_non_maps_is_refused():
    with pytest.raises(PodBuildError, match="containers"):
        merge(pod(containers=[{"name": "base"}]), {"spec": {"containers": ["oops"]}})
