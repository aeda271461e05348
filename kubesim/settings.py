"""kubesim's settings: built once (CLI flags or the in-process API) and passed in."""

from __future__ import annotations

import math
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
class LimitSettings:
    """kubesim's model of the API server's limit (API Priority and Fairness), off unless ``enabled``.

    One limited priority level takes every mutating API request (create, update, patch, delete,
    deletecollection); reads and watches are not limited. Defaults are those of a real
    PriorityLevelConfiguration's queuing and of kube-apiserver's queue wait (a quarter of its 60 s
    request timeout).
    """

    enabled: bool = False
    rate: float = 0.0
    """mutating requests the level completes per second (C); 0: no rate, only ``seats`` bound it."""
    seats: int = 0
    """mutating requests executing at once; 0: ceil(rate / 10), enough to hold ``rate`` for requests
    that take up to 100 ms (further injected latency included)."""
    queues: int = 64
    """queues of the level; flows are shuffle-sharded onto them."""
    hand_size: int = 8
    """queues dealt to each flow; a request joins the shortest of its flow's hand."""
    queue_length: int = 50
    """requests one queue may hold; a request whose shortest queue is full gets 429 at once."""
    queue_wait: float = 15.0
    """seconds a request may wait in a queue before it gets 429."""
    retry_after: int = 0
    """the Retry-After of a 429 in seconds; 0: as recent kube-apiserver releases do (1, doubled while
    drops go on, up to 32; lowered by one when they stop)."""

    def __post_init__(self) -> None:
        self.rate = float(self.rate)
        self.queue_wait = float(self.queue_wait)
        self.check()

    def effective_seats(self) -> int:
        if self.seats > 0:
            return self.seats
        return max(1, math.ceil(self.rate / 10)) if self.rate > 0 else 1

    def update(self, values: dict[str, object]) -> None:
        """Apply changes (keys are field names) all at once, or none: raises ValueError naming the bad one."""
        candidate = LimitSettings(**{f.name: getattr(self, f.name) for f in fields(self)})
        for key, value in values.items():
            if key not in _LIMIT_KINDS:
                raise ValueError(f"unknown limit setting {key!r}; known: {sorted(_LIMIT_KINDS)}")
            setattr(candidate, key, _coerce(key, value, _LIMIT_KINDS[key]))
        candidate.check()
        for f in fields(self):
            setattr(self, f.name, getattr(candidate, f.name))

    def check(self) -> None:
        """Raise ValueError saying which setting is out of range."""
        for key, minimum in _LIMIT_MINIMUMS.items():
            if getattr(self, key) < minimum:
                raise ValueError(f"limit setting {key}={getattr(self, key)!r}: must be >= {minimum}")
        if self.hand_size > self.queues:
            raise ValueError(f"limit setting hand_size={self.hand_size}: must be at most queues ({self.queues})")

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_LIMIT_KINDS: dict[str, type] = {f.name: {"bool": bool, "int": int, "float": float}[str(f.type)] for f in fields(LimitSettings)}
_LIMIT_MINIMUMS = {"rate": 0, "seats": 0, "queues": 1, "hand_size": 1, "queue_length": 0, "queue_wait": 0, "retry_after": 0}


def _coerce(key: str, value: object, kind: type) -> object:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif not isinstance(value, bool):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
        else:
            if kind is float and math.isfinite(number):
                return number
            if kind is int and number.is_integer():
                return int(number)
    raise ValueError(f"limit setting {key}: {value!r} is not {'a whole number' if kind is int else 'a ' + kind.__name__}")


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
    limit: LimitSettings = field(default_factory=LimitSettings)
    """the model of the API server's limit (flowcontrol.py); off by default."""
