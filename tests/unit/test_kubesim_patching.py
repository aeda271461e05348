"""kubesim patch dialects: strategic merge with Pod merge keys, RFC 7386, RFC 6902."""

import pytest

from podq.kubesim.errors import ApiError
from podq.kubesim.patching import json_patch, merge_patch, strategic_merge

POD = {
    "metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {"name": "base", "image": "i:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "side", "image": "s:1"},
        ]
    },
    "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]},
}


def test_strategic_merge_merges_lists_by_key() -> None:
    out = strategic_merge(POD, {"spec": {"containers": [{"name": "base", "image": "i:2", "env": [{"name": "B", "value": "3"}]}]}})
    base, side = out["spec"]["containers"]
    assert base["image"] == "i:2"
    assert base["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert side == {"name": "side", "image": "s:1"}
    assert POD["spec"]["containers"][0]["image"] == "i:1"  # input untouched


def test_strategic_merge_directives_and_null() -> None:
    out = strategic_merge(
        POD,
        {
            "metadata": {"labels": {"a": None, "c": "3"}, "finalizers": ["y"]},
            "spec": {"containers": [{"name": "side", "$patch": "delete"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
    )
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["metadata"]["finalizers"] == ["x", "y"]
    assert [c["name"] for c in out["spec"]["containers"]] == ["base"]
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]
    removed = strategic_merge(POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})
    assert removed["metadata"]["finalizers"] == []
    replaced = strategic_merge(POD, {"metadata": {"labels": {"$patch": "replace", "z": "9"}}})
    assert replaced["metadata"]["labels"] == {"z": "9"}


def test_merge_patch_replaces_lists() -> None:
    out = merge_patch(POD, {"spec": {"containers": [{"name": "only"}]}, "metadata": {"labels": {"a": None}}})
    assert out["spec"]["containers"] == [{"name": "only"}]
    assert out["metadata"]["labels"] == {"b": "2"}


def test_json_patch_ops() -> None:
    out = json_patch(
        POD,
        [
            {"op": "add", "path": "/metadata/labels/new~1key", "value": "v"},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "i:3"},
            {"op": "remove", "path": "/metadata/labels/b"},
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/c"},
            {"op": "move", "from": "/metadata/labels/c", "path": "/metadata/labels/d"},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "z"},
        ],
    )
    assert out["metadata"]["labels"] == {"a": "1", "new/key": "v", "d": "1"}
    assert out["spec"]["containers"][0]["image"] == "i:3"
    assert out["metadata"]["finalizers"] == ["x", "z"]


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ({"op": "add"}, 400),
        ([{"op": "frobnicate", "path": "/a"}], 400),
        ([{"path": "/a"}], 400),
        ([{"op": "remove", "path": "/metadata/nothing"}], 422),
        ([{"op": "test", "path": "/metadata/labels/a", "value": "2"}], 422),
        ([{"op": "replace", "path": "/metadata/nope", "value": 1}], 422),
    ],
)
def test_json_patch_errors(ops: object, code: int) -> None:
    with pytest.raises(ApiError) as info:
        json_patch(POD, ops)
    assert info.value.code == code
