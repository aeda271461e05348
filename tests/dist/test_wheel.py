"""The artifacts a deployment installs (`make dist`), checked as a user would use them.

The sdist and the wheel are built with PyPA's ``build`` (the wheel from the sdist, so the sdist is
proven complete), their metadata checked with ``twine check --strict``, and the wheel installed into a
new, empty virtualenv outside the source tree, where ``podq --version``, the public API and
``podq demo --jobs 5`` run. Slow (a virtualenv and its dependencies): `make dist-test`, in .ci/run.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import podq
from podq.shared.codec import SCHEMA

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.timeout(900)


def run(*argv, cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(arg) for arg in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=ROOT)
    return out


def readme_install_line() -> list[str]:
    """README.md's install command (section "Installing"), split as the shell would."""
    section = (ROOT / "README.md").read_text().split("## Installing", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in section.splitlines() if line.startswith("pip install")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def doc_install_lines() -> list[list[str]]:
    """Every `pip install` line of README.md and docs/ that installs podq, split as the shell would."""
    lines = set()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in path.read_text().splitlines():
            command = line.split("#", 1)[0].strip()
            if command.startswith("pip install") and "podq" in command:
                lines.add(command)
    return [shlex.split(line) for line in sorted(lines)]


@pytest.fixture(scope="module")
def home(dist, tmp_path_factory) -> Path:
    """A user's folder where `make dist` left dist/, with an empty virtualenv env/."""
    home = tmp_path_factory.mktemp("user")
    run(sys.executable, "-m", "venv", home / "env", cwd=home)
    (home / "dist").symlink_to(dist)
    return home


@pytest.fixture(scope="module")
def installed(home) -> Path:
    """The empty virtualenv with the wheel installed by README.md's own command."""
    venv = home / "env"
    pip, *rest = readme_install_line()
    assert pip == "pip"
    run(venv / "bin" / "pip", *rest, "--quiet", "--disable-pip-version-check", cwd=home)
    return venv


def test_every_install_line_in_the_docs_resolves_as_written(home):
    lines = doc_install_lines()
    assert ["pip", "install", "--find-links", "dist", "podq[airflow]"] in lines
    for pip, *rest in lines:
        assert pip == "pip"
        # What pip would install, resolved against the index and dist/ (the extra pulls in Airflow).
        run(home / "env" / "bin" / "pip", *rest, "--dry-run", "--quiet", "--disable-pip-version-check", cwd=home)


def test_build_names_the_version_and_passes_twine(dist):
    version = podq.__version__
    assert sorted(path.name for path in dist.iterdir()) == [f"podq-{version}-py3-none-any.whl",
                                                            f"podq-{version}.tar.gz"]
    run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()), cwd=ROOT)


def test_wheel_holds_the_code_and_its_data_and_nothing_else(dist):
    names = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"podq", f"podq-{podq.__version__}.dist-info"}
    lua = sorted(path.relative_to(ROOT / "broker").as_posix() for path in (ROOT / "broker").rglob("*.lua"))
    assert [name for name in lua if f"podq/broker/{name}" not in names] == []
    assert "podq/workers/templates/default.yaml" in names
    assert not [name for name in names if "/tests/" in name or name.startswith("tests/")]
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        members = {member.name.split("/", 1)[1] for member in sdist.getmembers() if "/" in member.name}
    assert {"pyproject.toml", "README.md", "podq/__init__.py", "broker/store/lua/claim.lua"} <= members


def test_wheel_in_an_empty_virtualenv_runs_the_demo(installed, tmp_path):
    bin_dir = installed / "bin"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PODQ_", "PYTHON"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    version = run(bin_dir / "podq", "--version", cwd=tmp_path, env=env)
    assert version.stdout.strip() == f"podq {podq.__version__} (wire protocol {SCHEMA})"
    # The installed package, not the source tree, is what runs.
    where = run(bin_dir / "python", "-c", "import podq; print(podq.__file__)", cwd=tmp_path, env=env)
    assert str(installed) in where.stdout
    api = run(bin_dir / "python", "-c", "import podq; print(' '.join(sorted(podq.__all__)))", cwd=tmp_path, env=env)
    assert api.stdout.split() == sorted(podq.__all__)
    run(bin_dir / "python", "-c", f"from podq import {', '.join(podq.__all__)}", cwd=tmp_path, env=env)
    demo = run(bin_dir / "podq", "demo", "--jobs", "5", cwd=tmp_path, env=env, timeout=400)
    assert "5/5 jobs terminal" in demo.stdout, demo.stdout
