"""One merge-key table for the Pod: the workers' override merge and kubesim's strategic merge agree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from podq.kubesim.patching import strategic_merge
from podq.shared.pods import mergekeys
from podq.shared.pods.mergekeys import MERGE_KEYS
from podq.workers.merge import merge


def nested(path: str, leaf: object) -> dict:
    """A Pod holding ``leaf`` at ``path``; keyed lists on the way get one item named by their key."""
    parts = path.split(".")
    value = leaf
    for depth in range(len(parts) - 1, 0, -1):
        above = ".".join(parts[:depth])
        value = {parts[depth]: value}
        if above in MERGE_KEYS:
            value = [{MERGE_KEYS[above]: "outer", **value}]
    return {parts[0]: value}


def item(key: str, value: str, **fields: object) -> dict:
    return {key: value, **fields}


@pytest.mark.parametrize("path", sorted(MERGE_KEYS))
def test_every_keyed_list_merges_on_its_key_in_both(path):
    key = MERGE_KEYS[path]
    base = nested(path, [item(key, "a", x=1), item(key, "b", x=2)])
    override = nested(path, [item(key, "b", y=3), item(key, "c", x=4)])
    expected = nested(path, [item(key, "a", x=1), item(key, "b", x=2, y=3), item(key, "c", x=4)])
    assert merge(base, override) == expected
    assert strategic_merge(base, override) == expected


@pytest.mark.parametrize("path", ["spec.readinessGates", "spec.tolerations", "spec.containers.envFrom",
                                  "spec.containers.args", "spec.containers.resizePolicy"])
def test_lists_without_a_merge_key_are_replaced_in_both(path):
    base = nested(path, [{"conditionType": "a", "key": "a"}])
    override = nested(path, [{"conditionType": "b", "key": "b"}])
    assert merge(base, override) == override
    assert strategic_merge(base, override) == override


def test_the_table_has_the_keys_kubernetes_declares():
    # Spot checks against k8s.io/api core/v1 (patchMergeKey): the two the old copies disagreed on.
    assert MERGE_KEYS["spec.topologySpreadConstraints"] == "topologyKey"
    assert MERGE_KEYS["spec.initContainers.volumeDevices"] == "devicePath"
    assert "spec.readinessGates" not in MERGE_KEYS


def test_the_table_imports_nothing_of_podq():
    tree = ast.parse(Path(mergekeys.__file__).read_text())
    modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert [name for name in modules if name and name.split(".")[0] == "podq"] == []
