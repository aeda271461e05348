"""Run kubesim as a child process (its own core, as a real API server is) and read its first line."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .admin import Admin
from .errors import KubeSimError

FIRST_LINE = re.compile(r"^kubesim listening on (?P<url>http://\S+) kubeconfig=(?P<kubeconfig>\S+) port=(?P<port>\d+)")


@dataclass
class KubeSimProcess:
    process: subprocess.Popen[str]
    url: str
    port: int
    kubeconfig: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def admin(self) -> Admin:
        return Admin(self.url)

    def stop(self, *, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> KubeSimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(*args: str, kubeconfig: str | None = None, timeout: float = 30.0, stderr: int | None = None) -> KubeSimProcess:
    """Start ``python -m podq.kubesim --port 0 ARGS...`` and wait for its first line."""
    path = kubeconfig or str(Path(tempfile.mkdtemp(prefix="kubesim-")) / "kubeconfig")
    process = subprocess.Popen(
        [sys.executable, "-m", "podq.kubesim", "--port", "0", "--kubeconfig", path, *args],
        stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = FIRST_LINE.match(line)
        if match:
            return KubeSimProcess(process, match["url"], int(match["port"]), match["kubeconfig"])
        if not line and process.poll() is not None:
            break
    process.kill()
    process.wait()
    process.stdout.close()
    raise KubeSimError(f"kubesim did not start (exit {process.returncode}, last line {line!r})")
