"""kubesim's settings: built once (CLI flags or the in-process API) and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "podq")


@dataclass(slots=True)
class KubeletDelays:
    """Seconds the simulated kubelet waits before each step of a pod's life (milliseconds are fine)."""

    schedule: float = 0.01
    """create -> spec.nodeName set and PodScheduled=True (the scheduler's binding)."""
    start: float = 0.01
    """scheduled -> the kubelet's first status: Pending, ContainerCreating."""
    sandbox: float = 0.01
    """-> PodReadyToStartContainers=True and the pod IP."""
    init: float = 0.01
    """per init container step (running, then terminated)."""
    ready: float = 0.01
    """-> Running, containers ready."""
    teardown: float = 0.01
    """terminal -> PodReadyToStartContainers=False (sandbox torn down)."""
    kill: float = 0.01
    """graceful delete -> containers killed (never more than the grace period)."""
    finalize: float = 0.01
    """containers killed -> the kubelet's DELETE with gracePeriodSeconds=0."""
    backoff: float = 0.1
    """first image-pull / crash back-off; doubles per retry up to 30x."""
    jitter: float = 0.0
    """fraction of each delay added at random (0.5 = up to +50 %)."""

    def update(self, values: dict[str, float]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in names:
                raise ValueError(f"unknown kubelet delay {key!r}; known: {sorted(names)}")
            setattr(self, key, max(0.0, float(value)))

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class SimSettings:
    """Everything a kubesim server is started with. Most of it can be changed at run time over the admin API."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port."""
    kubeconfig: str | None = None
    """where to write a kubeconfig pointing at this server (None: do not write one)."""
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES
    """namespaces that exist from the start (more can be created through the API)."""
    history_size: int = 20000
    """how many pod events a watch can resume across; older resourceVersions get 410 Expired."""
    bookmark_interval: float = 60.0
    """seconds between BOOKMARK events on watches that allow them."""
    default_run_seconds: float = 0.05
    """how long a container runs when the pod has no run-seconds annotation."""
    kubelet_paused: bool = False
    """start with the kubelet paused (pods stay as created)."""
    delays: KubeletDelays = field(default_factory=KubeletDelays)
    watch_buffer: int = 200000
    """lines a slow watch may fall behind before the server closes it."""
    tls_cert_file: str | None = None
    """serve HTTPS with this certificate (PEM; ``tls_key_file`` holds its key); None: plain HTTP."""
    tls_key_file: str | None = None
    """the private key of ``tls_cert_file``."""
    client_ca_file: str | None = None
    """accept client certificates signed by this CA (needs TLS); requests must then authenticate."""
    token: str | None = None
    """accept ``Authorization: Bearer <token>``; requests must then authenticate. None: no check."""
    request_log: int = 0
    """keep this many of the newest API requests, bodies included (admin ``GET /_kubesim/requests``)."""
    run_containers: bool = False
    """run each pod's containers as processes on this host (runtime.py) instead of simulating their outcome."""
    allow_remote_command_execution: bool = False
    """with run_containers, allow a listen address other than loopback (anyone reaching it runs commands here)."""
    image_map: tuple[tuple[str, str], ...] = ()
    """(image glob, directory) pairs: a container whose image matches gets the directory first on its PATH."""
    container_env: tuple[tuple[str, str], ...] = ()
    """environment every container process starts with (the pod's env comes on top)."""
    runtime_dir: str | None = None
    """where each pod's working/home directory is made; None: a temporary directory removed at stop."""
    memory_poll: float = 0.1
    """seconds between checks of a container's resident memory against its limit."""
    log_limit_bytes: int = 10 * 1024 * 1024
    """output kept per container instance for pods/log; the oldest lines go first."""
