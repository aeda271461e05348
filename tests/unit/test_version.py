"""One version, written once (podq/__init__.py), seen the same from every side."""
from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

import podq
from podq.cli import main
from podq.shared.codec import SCHEMA

ROOT = Path(__file__).parents[2]


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "podq.__version__"}
    assert importlib.metadata.version("podq") == podq.__version__


def test_version_flag_names_the_version_and_the_wire_protocol(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"podq {podq.__version__} (wire protocol {SCHEMA})\n"


def test_changelog_names_the_coming_release_and_its_wire_protocol():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[0] == "Unreleased"
    unreleased = text.split("## Unreleased", 1)[1].split("\n## ", 1)[0]
    assert f"**{podq.__version__}**" in unreleased
    assert f"wire protocol **{SCHEMA}**" in unreleased
