"""Every podq package installs from a wheel too: each folder with an ``__init__.py`` is declared in pyproject."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
FOLDERS = {"podq": "podq", "shared": "podq.shared", "broker": "podq.broker", "workers": "podq.workers",
           "watcher": "podq.watcher", "kubesim": "podq.kubesim"}


def python_packages() -> dict[str, str]:
    """Installed name -> folder, for every folder holding an ``__init__.py``."""
    found = {}
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found[".".join([name, *relative.parts])] = init.parent.relative_to(ROOT).as_posix()
    return found


def test_every_package_is_declared_with_its_folder():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = python_packages()
    assert sorted(setuptools["packages"]) == sorted(packages)
    assert {name: setuptools["package-dir"].get(name) for name in packages} == packages


def test_every_lua_script_is_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    scripts = sorted((ROOT / "broker").rglob("*.lua"))
    assert scripts
    for script in scripts:
        folder = next(parent for parent in script.parents if (parent / "__init__.py").exists())
        package = "podq." + ".".join(folder.relative_to(ROOT).parts)
        pattern = (script.parent.relative_to(folder) / "*.lua").as_posix()
        assert pattern in data.get(package, []), f"{script} is not package data"
