"""A primary, a replica and three Sentinels, all from the embedded server binary (for failover tests).

``valkey-server <config> --sentinel`` runs a Sentinel; each one rewrites its own
config file, so every process gets a fresh directory under ``directory``. The
primary and the replica keep an AOF like the embedded server. :meth:`kill_primary`
SIGKILLs whichever server the Sentinels name as primary now.
"""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from podq.broker.embedded import free_port, server_binary
from podq.shared.procs import die_with_parent

MASTER = "podq"


def _ask(port: int, call):
    """``call(client)`` on 127.0.0.1:``port``; None when the server does not answer."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return call(client)
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _knows_all(master: dict | None) -> bool:
    return bool(master) and int(master.get("num-other-sentinels", 0)) == 2 and int(master.get("num-slaves", 0)) == 1


class SentinelCluster:
    """Start with :meth:`start` (or ``with``); :attr:`url` is the ``redis+sentinel://`` URL podq takes."""

    def __init__(self, directory: Path, *, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.directory = directory
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.server_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def _spawn(self, port: int, argv: list[str]) -> None:
        log = open(self.directory / f"{port}.out", "ab")
        self.processes[port] = subprocess.Popen([str(server_binary()), *argv], stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True,
                                                preexec_fn=die_with_parent)
        log.close()

    def _server(self, port: int, *extra: str) -> None:
        data = self.directory / f"server-{port}"
        data.mkdir(parents=True, exist_ok=True)
        self._spawn(port, ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--appendonly", "yes",
                           "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                           "--logfile", str(data / "server.log"), *extra])

    def start(self, *, timeout: float = 60.0) -> "SentinelCluster":
        primary, replica = self.server_ports
        self._server(primary)
        self._server(replica, "--replicaof", "127.0.0.1", str(primary))
        self._until(lambda: (_ask(replica, lambda c: c.info("replication")) or {}).get("master_link_status") == "up",
                    timeout, "the replica to sync")
        for index, port in enumerate(self.sentinel_ports):
            data = self.directory / f"sentinel-{port}"
            data.mkdir(parents=True, exist_ok=True)
            config = data / "sentinel.conf"
            config.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", "daemonize no", f"dir {data}", f"logfile {data / 'sentinel.log'}",
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2",
                f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}",
                f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {MASTER} 1", ""]))
            self._spawn(port, [str(config), "--sentinel"])
        for port in self.sentinel_ports:
            self._until(lambda port=port: _knows_all(_ask(port, lambda c: c.sentinel_master(MASTER))),
                        timeout, f"Sentinel {port} to know the replica and the other two Sentinels")
        return self

    @staticmethod
    def _until(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)

    def primary_port(self) -> int | None:
        """The port the Sentinels name as primary now (None if none answers)."""
        for port in self.sentinel_ports:
            address = _ask(port, lambda c: c.sentinel_get_master_addr_by_name(MASTER))
            if address:
                return int(address[1])
        return None

    def kill_primary(self) -> int:
        """SIGKILL the current primary; returns its port."""
        port = self.primary_port()
        assert port is not None, "no Sentinel names a primary"
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        return port

    def primary_ports(self) -> set[int | None]:
        """The port each Sentinel names as primary now (None for one that does not answer)."""
        found = set()
        for sentinel in self.sentinel_ports:
            address = _ask(sentinel, lambda c: c.sentinel_get_master_addr_by_name(MASTER))
            found.add(int(address[1]) if address else None)
        return found

    def wait_promoted(self, old_port: int, *, timeout: float = 60.0) -> int:
        """Wait until every Sentinel names the same other primary and it accepts writes; returns its port."""
        self._until(lambda: len(ports := self.primary_ports()) == 1 and ports.isdisjoint({None, old_port}),
                    timeout, "a replica promoted")
        port = self.primary_port()
        self._until(lambda: (_ask(port, lambda c: c.info("replication")) or {}).get("role") == "master", timeout,
                    "the new primary")
        return port

    def restart(self, port: int) -> None:
        """Start the server on ``port`` again (after :meth:`kill_primary`), on its own data, as a replica
        of the current primary: what an operator's config (or Sentinel's rewrite of it) says. Started
        as a primary instead, a Sentinel that meets it before it is converted may elect it back
        (with its stale data) at the next hiccup of the promoted one."""
        assert self.processes[port].poll() is not None, f"the server on {port} is running"
        primary = self.primary_port()
        assert primary is not None and primary != port, "no other primary to follow"
        self._server(port, "--replicaof", "127.0.0.1", str(primary))

    def wait_rejoined(self, port: int, *, timeout: float = 90.0) -> None:
        """Wait until the server on ``port`` is a replica of the current primary, in sync, and every
        Sentinel counts it as one (so that it can be promoted at the next failover)."""
        def rejoined() -> bool:
            replication = _ask(port, lambda c: c.info("replication")) or {}
            if replication.get("role") != "slave" or replication.get("master_link_status") != "up":
                return False
            for sentinel in self.sentinel_ports:
                replicas = _ask(sentinel, lambda c: c.sentinel_slaves(MASTER)) or []
                if not any(int(r.get("port", 0)) == port and r.get("is_slave") and not r.get("is_sdown")
                           and int(r.get("master-port", 0)) == self.primary_port()
                           and r.get("master-link-status") == "ok" for r in replicas):
                    return False
            return True

        self._until(rejoined, timeout, f"the server on {port} to rejoin as a replica")

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> "SentinelCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
