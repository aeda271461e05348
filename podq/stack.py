"""The embedded stack behind `podq up` and `podq demo`: every service as its own process.

It starts the embedded Valkey server (unless PODQ_REDIS_URL is given), kubesim
(unless a kubeconfig or in-cluster config is given), intake, worker processes and
the watcher, each a child process that dies with its parent. ``close()`` stops
them all (SIGTERM, then SIGKILL after a grace period) and is safe to call twice.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from podq.broker.embedded import EmbeddedRedis
from podq.broker.store.reach import reach
from podq.shared.clusters import ENV_PREFIX, env_name
from podq.shared.errors import PodqError
from podq.shared.procs import die_with_parent
from podq.shared.settings import Settings

log = logging.getLogger(__name__)
_KUBESIM_LINE = re.compile(r"http://(?P<host>[^:\s]+):(?P<port>\d+).*kubeconfig=(?P<kubeconfig>\S+)")


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StackError(PodqError):
    """A service of the embedded stack failed to start or died."""


@dataclass(kw_only=True)
class StackOptions:
    workers: int = 2
    worker_concurrency: int | None = None
    """Celery threads per worker (``--concurrency``); None: the settings' (PODQ_WORKER_CONCURRENCY)."""
    namespace: str = "default"
    data_dir: str | None = None
    kubesim_args: tuple[str, ...] = ()
    log_dir: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Environment for one kind of service only (``intake``, ``worker``, ``watcher``), over ``extra_env``:
    e.g. each its own Redis user in PODQ_REDIS_URL."""
    restart: bool = False
    """Restart podq's services when they exit on their own, as a container runtime would
    (kubesim is not restarted: its state lives in memory)."""
    max_restarts: int = 5
    """Restarts of one service within a minute before it is left dead."""
    clusters: tuple[str, ...] = ()
    """Run a cell of several clusters, each its own kubesim (``kubesim-<name>``), the first the default
    (PODQ_KUBE_CLUSTER, the others PODQ_KUBE_CLUSTERS): per cluster ``workers`` worker processes
    (``worker-<name>-<i>``, ``--cluster <name>``) and a watcher (``watcher-<name>``). Empty: one
    cluster, as before."""


class Stack:
    """The running services; use as a context manager."""

    def __init__(self, settings: Settings, options: StackOptions | None = None) -> None:
        self.settings = settings
        self.options = options or StackOptions()
        self.workdir = Path(self.options.data_dir or tempfile.mkdtemp(prefix="podq-stack-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir = Path(self.options.log_dir or self.workdir / "logs")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis: EmbeddedRedis | None = None
        self.redis_url = settings.redis.url
        self.kubeconfig = settings.kube.kubeconfig
        self.kubesim_url: str | None = None
        self.kubeconfigs: dict[str, str] = {}
        """Each cluster's kubeconfig (with ``clusters``)."""
        self.kubesim_urls: dict[str, str] = {}
        """Each cluster's kubesim URL (with ``clusters``)."""
        self.processes: dict[str, subprocess.Popen] = {}
        self.metrics: dict[str, str] = {}
        """Each podq service's metrics URL (its own loopback port: one port per process)."""
        self.argv: dict[str, list[str]] = {}
        self.restarts: dict[str, list[float]] = {}
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Stack":
        try:
            if not self.redis_url:
                self.redis = EmbeddedRedis(data_dir=str(self.workdir / "redis")).start()
                self.redis_url = self.redis.url
            else:   # a given server must answer now, not after every service has started and died
                reach(self.redis_url, settings=self.settings.redis).close()
            if self.options.clusters:
                self._start_clusters()
                return self._supervised()
            if not self.kubeconfig and not self.settings.kube.in_cluster:
                self._start_kubesim()
            self.spawn("intake", ["intake", "--consumer", "intake-1"])
            for index in range(1, self.options.workers + 1):
                self.spawn(f"worker-{index}", ["worker", "--hostname", f"worker-{index}@podq", *self._threads()])
            # No scope on the command line: the watcher takes PODQ_WATCHER_NAMESPACES (else the
            # stack's namespace, PODQ_KUBE_NAMESPACE), the setting intake's checks read too.
            self.spawn("watcher", ["watcher"])
        except BaseException:
            self.close()
            raise
        return self._supervised()

    def _supervised(self) -> "Stack":
        if self.options.restart:
            self._supervisor = threading.Thread(target=self._supervise, name="podq-stack-supervisor", daemon=True)
            self._supervisor.start()
        return self

    def _threads(self) -> list[str]:
        return ["--concurrency", str(self.options.worker_concurrency)] if self.options.worker_concurrency else []

    def _start_clusters(self) -> None:
        """One kubesim per cluster, then intake, each cluster's workers and its watcher."""
        names = self.options.clusters
        for name in names:
            self._start_kubesim(cluster=name)
        self.kubeconfig, self.kubesim_url = self.kubeconfigs[names[0]], self.kubesim_urls[names[0]]
        self.spawn("intake", ["intake", "--consumer", "intake-1"])
        for name in names:
            for index in range(1, self.options.workers + 1):
                self.spawn(f"worker-{name}-{index}", ["worker", "--hostname", f"worker-{name}-{index}@podq",
                                                      "--cluster", name, *self._threads()])
            self.spawn(f"watcher-{name}", ["watcher", "--cluster", name])

    def _supervise(self) -> None:
        """Named loop: restart services that exited on their own, until the stack closes."""
        while not self._stopping.wait(0.5):
            for name, process in list(self.processes.items()):
                now = time.monotonic()
                if process.poll() is None or self._stopping.is_set() or not self._restartable(name, now):
                    continue
                log.warning("%s exited with %s; restarting it (see %s)", name, process.returncode,
                            self.log_dir / f"{name}.log")
                self.restarts[name] = [*self._recent_restarts(name, now), now]
                self.spawn(name, self.argv[name])

    def _recent_restarts(self, name: str, now: float) -> list[float]:
        return [at for at in self.restarts.get(name, []) if now - at < 60.0]

    def _restartable(self, name: str, now: float) -> bool:
        return (self.options.restart and not name.startswith("kubesim")
                and len(self._recent_restarts(name, now)) < self.options.max_restarts)

    def env(self, name: str = "") -> dict[str, str]:
        """The environment of service ``name`` (``worker-2`` is a ``worker``)."""
        env = dict(os.environ)
        env["PODQ_REDIS_URL"] = self.redis_url or ""
        if self.kubeconfig:
            env["PODQ_KUBE_KUBECONFIG"] = self.kubeconfig
        if self.options.clusters:
            first, *others = self.options.clusters
            env.update({"PODQ_KUBE_CLUSTER": first, "PODQ_KUBE_CLUSTERS": ",".join(others)})
            env.update({f"{ENV_PREFIX}{env_name(other)}_KUBECONFIG": self.kubeconfigs[other]
                        for other in others if other in self.kubeconfigs})
        env.setdefault("PODQ_KUBE_NAMESPACE", self.options.namespace)
        env.update(self.options.extra_env)
        env.update(self.options.service_env.get(name.partition("-")[0], {}))
        return env

    def _metrics_env(self, name: str) -> dict[str, str]:
        """The service's metrics address: a loopback port of its own, kept across restarts."""
        if name not in self.metrics:
            port = free_port()
            self.metrics[name] = f"http://127.0.0.1:{port}/metrics"
        port = self.metrics[name].rsplit(":", 1)[1].split("/", 1)[0]
        return {"PODQ_METRICS_ADDRESS": "127.0.0.1", "PODQ_METRICS_PORT": port}

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        """Start ``podq <argv>`` as service ``name``, its output in ``logs/<name>.log``."""
        env = {**self.env(name), **self._metrics_env(name)}
        with open(self.log_dir / f"{name}.log", "ab") as output:
            process = subprocess.Popen([sys.executable, "-m", "podq", *argv], env=env,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       preexec_fn=die_with_parent)
        self.processes[name] = process
        self.argv[name] = list(argv)
        log.info("started %s (pid %s)", name, process.pid)
        return process

    def restart_kubesim(self, cluster: str) -> None:
        """Start cluster ``cluster``'s kubesim again (after it died), empty, on the same port and kubeconfig:
        the cluster coming back after an outage that lost its pods."""
        port = int(self.kubesim_urls[cluster].rsplit(":", 1)[1])
        old = self.processes.get(f"kubesim-{cluster}")
        if old is not None and old.poll() is None:
            raise StackError(f"kubesim-{cluster} is still running")
        if old is not None and old.stdout:
            old.stdout.close()
        self._start_kubesim(cluster=cluster, port=port)

    def _start_kubesim(self, *, timeout: float = 30.0, cluster: str | None = None, port: int = 0) -> None:
        """kubesim (``cluster``: that cluster's, as service ``kubesim-<cluster>``)."""
        name = f"kubesim-{cluster}" if cluster else "kubesim"
        kubeconfig = self.workdir / (f"kubeconfig-{cluster}" if cluster else "kubeconfig")
        with open(self.log_dir / f"{name}.log", "ab") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "podq", "kubesim", "--host", "127.0.0.1", "--port", str(port),
                 "--kubeconfig", str(kubeconfig), *self.options.kubesim_args],
                env=self.env("kubesim"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
                preexec_fn=die_with_parent, text=True)
        self.processes[name] = process
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            match = _KUBESIM_LINE.search(line)
            if match:
                url = f"http://{match.group('host')}:{match.group('port')}"
                if cluster:
                    self.kubeconfigs[cluster], self.kubesim_urls[cluster] = match.group("kubeconfig"), url
                else:
                    self.kubeconfig, self.kubesim_url = match.group("kubeconfig"), url
                return
            if process.poll() is not None:
                break
        raise StackError(f"{name} did not start (last output {line!r}; see {self.log_dir / f'{name}.log'})")

    def dead(self) -> list[str]:
        """Names of services that have exited and will not be restarted."""
        now = time.monotonic()
        return [name for name, process in self.processes.items()
                if process.poll() is not None and not self._restartable(name, now)]

    def close(self, *, grace: float = 10.0) -> None:
        """Stop every service (SIGTERM, then SIGKILL after ``grace`` seconds).

        podq's services stop first and kubesim after them, so tasks still talking to
        the API (a completion's delete, say) can finish instead of retrying a dead server.
        """
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        services = [name for name in self.processes if not name.startswith("kubesim")]
        self._stop(services, grace=grace)
        self._stop([name for name in self.processes if name.startswith("kubesim")], grace=grace)
        self.processes.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def _stop(self, names: list[str], *, grace: float) -> None:
        for name in names:
            if self.processes[name].poll() is None:
                self.processes[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in names:
            process = self.processes[name]
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %s s; killing it", name, grace)
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
