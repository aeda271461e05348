"""The layering docs/architecture.md states, checked on every import in the tree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# folder -> the podq packages it may import (besides itself)
ALLOWED = {
    "shared": set(),
    "broker": {"shared"},
    "workers": {"shared", "broker"},
    "watcher": {"shared", "broker"},
    "kubesim": set(),
}
# single modules a folder may import although their package is not allowed to it
ALLOWED_MODULES = {
    # The Pod's merge keys and resource quantities: one definition for workers and kubesim.
    "kubesim": {"podq.shared.pods.mergekeys", "podq.shared.quantity"},
}
# third-party modules only some folders may touch
ADAPTERS = {"redis": {"broker"}, "kubernetes": {"shared"}}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def files_of(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_packages_import_only_the_layers_below(folder):
    wrong = []
    for path in files_of(folder):
        for name in imports_of(path):
            parts = name.split(".")
            if name in ALLOWED_MODULES.get(folder, ()):
                continue
            if parts[0] == "podq" and len(parts) > 1 and parts[1] != folder and parts[1] not in ALLOWED[folder]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


@pytest.mark.parametrize("module", sorted(ADAPTERS))
def test_third_party_adapters_stay_in_their_folders(module):
    wrong = []
    for folder in ALLOWED:
        if folder in ADAPTERS[module] or folder == "kubesim":
            continue
        for path in files_of(folder):
            if any(name == module or name.startswith(module + ".") for name in imports_of(path)):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_nothing_imports_tests():
    wrong = [f"{path.relative_to(ROOT)} imports {name}" for folder in [*ALLOWED, "podq"]
             for path in files_of(folder) for name in imports_of(path) if name.split(".")[0] == "tests"]
    assert wrong == []


def test_one_adapter_module_talks_to_kubernetes():
    """shared/kubeclient.py builds the one client configuration workers and watcher use."""
    users = [str(path.relative_to(ROOT)) for folder in [*ALLOWED, "podq"] if folder != "kubesim"
             for path in files_of(folder) if any(name.split(".")[0] == "kubernetes" for name in imports_of(path))]
    assert users == ["shared/kubeclient.py"]


@pytest.mark.parametrize("folder", ["workers", "watcher"])
def test_workers_and_watcher_reach_the_api_through_their_kube_module(folder):
    users = [path.name for path in files_of(folder)
             if any(name == "podq.shared.kubeclient" for name in imports_of(path))]
    assert users == ["kube.py"]


def test_tests_share_helpers_only_through_tests_support():
    """A test module imports helpers from tests.support, never from another test module."""
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0 and path.parent.name != "support":
                wrong.append(f"{path.relative_to(ROOT)} imports .{node.module or ''} (relative)")
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tests" \
                    and node.module.split(".")[:2] != ["tests", "support"]:
                wrong.append(f"{path.relative_to(ROOT)} imports {node.module}")
    assert wrong == []


# Inside broker/: its role packages and what each may import (besides itself, shared and broker.errors).
BROKER_ALLOWED = {
    "store": set(),
    "queue": {"store"},
    "control": {"store", "queue"},
    "intake": {"store", "queue", "control"},
    "client": {"store", "intake"},   # submit() runs intake's admission checks before sending
    "embedded": set(),
}


def broker_part(path: Path) -> str:
    relative = path.relative_to(ROOT / "broker")
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


@pytest.mark.parametrize("part", sorted(BROKER_ALLOWED))
def test_broker_packages_import_only_the_ones_below(part):
    wrong = []
    for path in files_of("broker"):
        if broker_part(path) != part:
            continue
        for name in imports_of(path):
            parts = name.split(".")
            if parts[:2] == ["podq", "broker"] and len(parts) > 2 and parts[2] not in (part, "errors") \
                    and parts[2] not in BROKER_ALLOWED[part]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_only_broker_store_imports_redis():
    users = [str(path.relative_to(ROOT)) for folder in ALLOWED for path in files_of(folder)
             if any(name.split(".")[0] == "redis" for name in imports_of(path))]
    assert users and all(user.startswith("broker/store/") for user in users), users


def redis_calls(path: Path) -> list[str]:
    """Calls of a Redis command on something named like a client or a pipeline."""
    import redis

    commands = {name for name in dir(redis.Redis) if not name.startswith("_")} - {"close"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in commands:
            receiver = ast.unparse(node.func.value)
            if receiver.split(".")[-1].lstrip("_") in {"client", "pipe", "pipeline", "redis"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {receiver}.{node.func.attr}()")
    return found


def test_redis_commands_are_issued_only_in_broker_store():
    calls = [call for folder in ("broker", "workers", "watcher", "podq") for path in files_of(folder)
             if not path.relative_to(ROOT).as_posix().startswith("broker/store/") for call in redis_calls(path)]
    assert calls == []


def test_the_redis_call_check_sees_a_command():
    assert redis_calls(ROOT / "broker" / "store" / "streams.py")
