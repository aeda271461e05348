"""The opt-in container runtime (``--run-containers``): runs each pod's containers as processes on this host.

Off by default. A container becomes a local process: its ``command`` + ``args`` (``args`` alone run as the
command, as an image whose entrypoint is ``exec "$@"`` would), its ``env`` (``value``, ``$(VAR)`` references,
``valueFrom.fieldRef``), the image ignored or mapped to a directory put first on ``PATH`` (``image_map``, e.g.
an image to a virtualenv's ``bin``, so ``python`` is that interpreter). stdout and stderr go to the container's
log buffer (logs.py). A memory limit is enforced by polling the resident size of the container's processes.

No process outlives kubesim: each container runs in its own process group (a new session), its first process
has PR_SET_PDEATHSIG=SIGKILL, the end of a container takes its whole group with it, stopping kubesim kills
every group, and the reaper process (reaper.py) kills what is left if kubesim itself is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fnmatch
import ipaddress
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podq.shared.quantity import parse_quantity

from .logs import LogBuffer, LogStore
from .settings import SimSettings

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

_PR_SET_PDEATHSIG = 1
try:  # resolved here, in the parent: a freshly forked child must not load libraries
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: no parent-death signal
    _prctl = None

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FORCED_DELETE_GRACE = 2.0
"""seconds a force-deleted pod's processes get between SIGTERM and SIGKILL (the kubelet's minimum grace)"""
PIPE_DRAIN_SECONDS = 2.0
"""after a container ended, how long its output pipe may stay open (held by a process that left its group)"""
OCI_EXEC_FAILED = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: "
    'unable to start container process: exec: "{0}": {1}: unknown'
)
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


class UnsafeBind(ValueError):
    """The runtime is on and kubesim was asked to listen beyond loopback without the explicit flag."""


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (a name is resolved)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%", 1)[0]).is_loopback for info in infos)


def check_bind(settings: SimSettings) -> None:
    """Refuse a non-loopback listen address while the runtime is on, unless the danger was accepted by name."""
    if settings.run_containers and not settings.allow_remote_command_execution and not is_loopback(settings.host):
        raise UnsafeBind(
            f"--run-containers runs each pod's command on this host and kubesim has no authentication, so it listens "
            f"on loopback only: --host {settings.host!r} refused (pass --allow-remote-command-execution to let anyone "
            f"who can reach {settings.host} run commands here)"
        )


class ConfigError(Exception):
    """The container cannot be started as specified (the kubelet's CreateContainerConfigError)."""


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How a container instance ended, as its ``state.terminated`` reports it."""

    exit_code: int
    reason: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything needed to start one container's process."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    memory_limit: int | None
    logs_as_message: bool = False
    """``terminationMessagePolicy: FallbackToLogsOnError``: a failed exit carries the end of the output as its message"""


def memory_bytes(quantity: object) -> int | None:
    """A memory limit (``512Mi``, ``1G``, ``1e9``, 1000) in bytes; None when absent or unreadable."""
    amount = parse_quantity(quantity)
    return None if amount is None else int(amount)


_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z0-9]+)\)")


def expand(text: str, values: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, unknown ones kept, ``$$`` is ``$``."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return values.get(match.group(1), match.group(0))

    return _REFERENCE.sub(one, text)


_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: JsonDict, path: str, *, pod_ip: str | None, host_ip: str | None) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName") or "kubesim-node",
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.hostIP": host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    match = _FIELD.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f'unsupported fieldRef fieldPath "{path}"')


def _missing_source(source: JsonDict, what: str) -> bool:
    """A secret/configMap reference: kubesim holds none, so it fails unless marked optional."""
    if source.get("optional"):
        return True
    raise ConfigError(f'{what} "{source.get("name", "")}" not found')


def container_env(pod: JsonDict, container: JsonDict, *, base: dict[str, str], pod_ip: str | None, host_ip: str | None) -> dict[str, str]:
    env = dict(base)
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            _missing_source(source["secretRef"], "secret")
        elif "configMapRef" in source:
            _missing_source(source["configMapRef"], "configmap")
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        ref = var["valueFrom"] or {}
        if "fieldRef" in ref:
            env[name] = field_value(pod, ref["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip, host_ip=host_ip)
        elif "secretKeyRef" in ref:
            _missing_source(ref["secretKeyRef"], "secret")
        elif "configMapKeyRef" in ref:
            _missing_source(ref["configMapKeyRef"], "configmap")
        else:
            raise ConfigError(f"env {name}: kubesim supports value and valueFrom.fieldRef only, not {sorted(ref)}")
    return env


def mapped_bin_dir(image: str, image_map: tuple[tuple[str, str], ...]) -> str | None:
    """The directory the first matching glob maps ``image`` to (an interpreter named instead stands for its directory)."""
    for pattern, target in image_map:
        if fnmatch.fnmatchcase(image, pattern):
            return target if os.path.isdir(target) or not os.path.exists(target) else os.path.dirname(target)
    return None


def _child_setup(parent_pid: int, reaper_fd: int | None):  # type: ignore[no-untyped-def]
    def setup() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:
            os._exit(137)  # kubesim died while this child was being born
        if reaper_fd is not None:
            # the child tells the reaper its group itself, before it runs anything: kubesim could be killed
            # between the exec and its own next line, and the processes the container starts would outlive it
            try:
                os.write(reaper_fd, b"+%d\n" % os.getpid())
            except OSError:
                pass

    return setup


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                found.extend(int(p) for p in f.read().split())
    except OSError:
        pass
    return found


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (those that stayed its descendants)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current not in found:
            found.append(current)
            todo.extend(_children(current))
    return found


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return _rss(pid)
    return _rss(pid)


def over_limit(pid: int, limit: int) -> bool:
    """Whether the memory of ``pid``'s process tree exceeds ``limit`` bytes.

    The resident sizes are summed first (cheap); only when they exceed the limit is it confirmed with the
    proportional sizes, which count pages shared between the processes (a fork's) once, as a cgroup does.
    """
    pids = _tree(pid)
    if sum(_rss(p) for p in pids) <= limit:
        return False
    return sum(_pss(p) for p in pids) > limit


def exit_info(code: int, *, oom: bool) -> ExitInfo:
    if code < 0:
        code = 128 - code  # killed by a signal: the shell's (and the kubelet's) 128+N
    if oom:
        return ExitInfo(137, "OOMKilled")
    return ExitInfo(code, "Completed" if code == 0 else "Error")


class Reaper:
    """The reaper process (reaper.py), started with the runtime, on the thread that runs kubesim's loop
    (a parent-death signal follows the thread that forked)."""

    def __init__(self) -> None:
        script = str(Path(__file__).with_name("reaper.py"))
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", script],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True,
        )

    def _send(self, line: str) -> None:
        if self.process is None or self.process.stdin is None:
            return
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except OSError as exc:
            log.error("the reaper process is gone (%s); processes may outlive a killed kubesim", exc)

    @property
    def fd(self) -> int | None:
        """The write end of the reaper's input, for a container's first process to announce its group with
        (``+PGID``, in the child before it execs)."""
        if self.process is None or self.process.stdin is None:
            return None
        return self.process.stdin.fileno()

    def remove(self, group: int) -> None:
        self._send(f"-{group}")

    def close(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


class Run:
    """One container instance: its process group, its output pump, its memory watch and how it ended."""

    def __init__(self, runtime: ContainerRuntime, launch: Launch, *, buffer: LogBuffer, label: str) -> None:
        self.runtime = runtime
        self.launch = launch
        self.buffer = buffer
        self.label = label
        self.process: subprocess.Popen[bytes] | None = None
        self.pending_signal: int | None = None
        self.oom = False
        self.done: asyncio.Future[ExitInfo] = asyncio.get_running_loop().create_future()
        runtime.alive.add(self)
        self.done.add_done_callback(lambda _: runtime.alive.discard(self))
        self.task = asyncio.get_running_loop().create_task(self._main(), name=f"container:{label}")

    async def _main(self) -> None:
        # subprocess.Popen and a pidfd rather than asyncio's subprocess: asyncio's wait() also waits for the
        # output pipe to close, which a process left behind in the background can hold open forever.
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        try:
            self.process = subprocess.Popen(
                self.launch.argv, env=self.launch.env, cwd=self.launch.cwd,
                stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd,
                start_new_session=True, preexec_fn=_child_setup(os.getpid(), self.runtime.reaper.fd),
            )
        except OSError as exc:
            os.close(read_fd)
            why = "executable file not found in $PATH" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
            self.buffer.close()
            self.done.set_result(ExitInfo(128, "StartError", OCI_EXEC_FAILED.format(self.launch.argv[0], why)))
            return
        finally:
            os.close(write_fd)
        group = self.process.pid  # the child announced it to the reaper (_child_setup)
        log.info("container %s started: pid %s, %s", self.label, group, self.launch.argv[:3])
        if self.pending_signal is not None:
            self.signal(self.pending_signal)
        eof = self._pump(read_fd)
        watch = None
        if self.launch.memory_limit:
            watch = loop.create_task(self._watch_memory(self.launch.memory_limit), name=f"memory:{self.label}")
        try:
            await self._exited()
        finally:
            # the container's end takes every process in it along; done before reaping the first process, so
            # its pid (the group's id) cannot have been reused meanwhile
            self._kill_group(signal.SIGKILL)
            code = self.process.wait()
            if watch is not None:
                watch.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(eof), PIPE_DRAIN_SECONDS)
            except asyncio.TimeoutError:  # a process that left the group holds the pipe: stop reading
                loop.remove_reader(read_fd)
                os.close(read_fd)
            self.buffer.close()
            self.runtime.reaper.remove(group)
        info = exit_info(code, oom=self.oom)
        if info.exit_code != 0 and self.launch.logs_as_message:
            info = ExitInfo(info.exit_code, info.reason, self.buffer.tail_text() or None)
        log.info("container %s ended: exit %s %s", self.label, info.exit_code, info.reason)
        self.done.set_result(info)

    def _pump(self, fd: int) -> asyncio.Future[None]:
        """Copy the output pipe into the log buffer as it comes; the future is done at end of file."""
        loop = asyncio.get_running_loop()
        eof: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)

        def readable() -> None:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if chunk:
                self.buffer.feed(chunk)
                return
            loop.remove_reader(fd)
            os.close(fd)
            if not eof.done():
                eof.set_result(None)

        loop.add_reader(fd, readable)
        return eof

    async def _exited(self) -> None:
        """Wait until the first process has exited, without reaping it (a pidfd where Linux has one, else polling)."""
        assert self.process is not None
        try:
            pidfd = os.pidfd_open(self.process.pid)
        except (AttributeError, OSError):
            while self.process.poll() is None:  # loop "exit-poll": ends when the process exits
                await asyncio.sleep(0.05)
            return
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)

    async def _watch_memory(self, limit: int) -> None:
        assert self.process is not None
        while True:  # loop "memory-watch": ends when the container ends (cancelled) or exceeds its limit
            await asyncio.sleep(self.runtime.settings.memory_poll)
            if over_limit(self.process.pid, limit):
                log.info("container %s exceeded its memory limit of %s bytes: killed", self.label, limit)
                self.oom = True
                self._kill_group(signal.SIGKILL)
                return

    def _kill_group(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    def signal(self, sig: int) -> None:
        """Signal every process of the container (remembered until the process exists)."""
        if self.done.done():
            return
        if self.process is None:
            self.pending_signal = signal.SIGKILL if sig == signal.SIGKILL else (self.pending_signal or sig)
            return
        self._kill_group(sig)

    async def stop(self, grace: float) -> ExitInfo:
        """SIGTERM, then SIGKILL after ``grace`` seconds; how the container ended."""
        if not self.done.done():
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.done), max(grace, 0.0))
            except asyncio.TimeoutError:
                self.signal(signal.SIGKILL)
        return await asyncio.shield(self.done)


class ContainerRuntime:
    """Every pod's container processes, by pod uid and container name."""

    def __init__(self, settings: SimSettings, logs: LogStore) -> None:
        self.settings = settings
        self.logs = logs
        self.reaper = Reaper()
        self.runs: dict[str, dict[str, Run]] = {}
        """the latest instance of each container, by pod uid and container name"""
        self.alive: set[Run] = set()
        """every container instance that has not ended, those of deleted pods included"""
        self.root = Path(settings.runtime_dir) if settings.runtime_dir else Path(tempfile.mkdtemp(prefix="kubesim-pods-"))
        self._own_root = not settings.runtime_dir
        self.root.mkdir(parents=True, exist_ok=True)

    # -- what to start ------------------------------------------------------------------------------
    def pod_dir(self, pod: JsonDict) -> Path:
        meta = pod["metadata"]
        path = self.root / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def prepare(self, pod: JsonDict, container: JsonDict, *, pod_ip: str | None, host_ip: str | None) -> Launch:
        """The process for ``container``; ConfigError when the kubelet could not create it."""
        home = str(self.pod_dir(pod))
        path = os.environ.get("PATH") or DEFAULT_PATH
        bin_dir = mapped_bin_dir(container.get("image", ""), self.settings.image_map)
        if bin_dir:
            path = f"{bin_dir}{os.pathsep}{path}"
        base = {"PATH": path, "HOME": home, "HOSTNAME": pod["metadata"]["name"]}
        for name in ("LANG", "LC_ALL", "TZ"):
            if name in os.environ:
                base[name] = os.environ[name]
        base.update(self.settings.container_env)
        env = container_env(pod, container, base=base, pod_ip=pod_ip, host_ip=host_ip)
        words = [*(container.get("command") or []), *(container.get("args") or [])]
        if not words:
            raise ConfigError(f"kubesim runs the container's command: container {container['name']!r} has neither command nor args")
        argv = [expand(str(word), env) for word in words]
        if os.sep not in argv[0]:
            found = shutil.which(argv[0], path=env.get("PATH", path))
            argv[0] = found or argv[0]
        working = container.get("workingDir")
        cwd = working if working and os.path.isdir(working) else home
        limits = (container.get("resources") or {}).get("limits") or {}
        return Launch(argv=argv, env=env, cwd=cwd, memory_limit=memory_bytes(limits.get("memory")),
                      logs_as_message=container.get("terminationMessagePolicy") == "FallbackToLogsOnError")

    # -- running --------------------------------------------------------------------------------------
    def start(self, pod: JsonDict, name: str, launch: Launch, *, container_id: str) -> Run:
        meta = pod["metadata"]
        buffer = self.logs.open(uid=meta["uid"], container_id=container_id)
        run = Run(self, launch, buffer=buffer, label=f"{meta['namespace']}/{meta['name']}/{name}")
        self.runs.setdefault(meta["uid"], {})[name] = run
        return run

    def running(self, uid: str) -> dict[str, Run]:
        return dict(self.runs.get(uid, {}))

    async def stop_pod(self, uid: str, grace: float) -> dict[str, ExitInfo]:
        """Stop every container of a pod (SIGTERM, SIGKILL after ``grace``); how each ended."""
        runs = self.running(uid)
        infos = await asyncio.gather(*(run.stop(grace) for run in runs.values()))
        return dict(zip(runs, infos))

    def forget(self, uid: str, pod: JsonDict) -> None:
        """The pod is gone from the API: stop what still runs, then drop its directory and output."""
        runs = self.runs.pop(uid, {})
        self.logs.drop_pod(uid)

        async def clean() -> None:
            await asyncio.gather(*(run.stop(FORCED_DELETE_GRACE) for run in runs.values()), return_exceptions=True)
            meta = pod["metadata"]
            shutil.rmtree(self.root / f"{meta['namespace']}_{meta['name']}_{uid[:8]}", ignore_errors=True)

        asyncio.get_running_loop().create_task(clean(), name=f"forget:{uid}")

    async def close(self) -> None:
        """kubesim is stopping: kill every container now."""
        runs = list(self.alive)
        self.runs.clear()
        for run in runs:
            run.signal(signal.SIGKILL)
        await asyncio.gather(*(asyncio.shield(run.done) for run in runs), return_exceptions=True)
        self.reaper.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
