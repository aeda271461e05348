"""``podq kubesim`` / ``python -m podq.kubesim``: run a kubesim server until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

from .eventloop import new_event_loop
from .runtime import UnsafeBind
from .settings import DEFAULT_NAMESPACES, KubeletDelays, LimitSettings, SimSettings

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="podq kubesim", description="A Kubernetes API stand-in for Pods with a simulated kubelet.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--kubeconfig", default=".podq/kubesim/kubeconfig", help="where to write the kubeconfig")
    p.add_argument("--namespace", action="append", default=[], help="extra namespace to pre-create (repeatable)")
    p.add_argument("--history-size", type=int, default=20000, help="pod events kept for watch resumption")
    p.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks")
    p.add_argument("--default-run-seconds", type=float, default=0.05, help="container run time without an annotation")
    p.add_argument("--kubelet-paused", action="store_true", help="start with the kubelet paused")
    defaults = KubeletDelays()
    for name, value in defaults.as_dict().items():
        p.add_argument(f"--kubelet-{name}", type=float, default=value, metavar="SECONDS", help=f"kubelet {name} delay")
    p.add_argument("--latency", action="append", default=[], metavar="VERB=SECONDS[:JITTER]", help="added latency (repeatable; VERB may be *)")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ACTION[:VERB[:RATE[:NAMESPACE]]]",
        help="fault rule, e.g. 429:create:0.1 or 403:*:1:forbidden-ns (repeatable)",
    )
    p.add_argument("--tls-cert-file", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-private-key-file", help="the private key of --tls-cert-file (PEM)")
    p.add_argument("--client-ca-file", help="accept client certificates signed by this CA; requests must authenticate")
    p.add_argument("--token", help="accept this bearer token; requests must authenticate")
    p.add_argument("--request-log", type=int, default=0, metavar="N", help="keep the newest N API requests (admin: /_kubesim/requests)")
    limit = p.add_argument_group(
        "API limit", "off by default: --limit-rate or --limit-seats models API Priority and Fairness for mutating requests")
    limit.add_argument("--limit-rate", type=float, metavar="PER_SECOND", help="mutating requests completed per second")
    limit.add_argument("--limit-seats", type=int, metavar="N", help="mutating requests executing at once (default: ceil(rate/10))")
    limit.add_argument("--limit-queues", type=int, metavar="N", help="fair queues (default 64)")
    limit.add_argument("--limit-hand-size", type=int, metavar="N", help="queues dealt to each flow (default 8)")
    limit.add_argument("--limit-queue-length", type=int, metavar="N", help="requests one queue holds (default 50)")
    limit.add_argument("--limit-queue-wait", type=float, metavar="SECONDS", help="longest wait in a queue before 429 (default 15)")
    limit.add_argument("--limit-retry-after", type=int, metavar="SECONDS", help="pin Retry-After (default: kube-apiserver's, 1 to 32)")
    runtime = p.add_argument_group("container runtime", "off by default: --run-containers runs the pod's command on this host")
    runtime.add_argument("--run-containers", action="store_true", help="run each pod's containers as local processes (loopback only)")
    runtime.add_argument(
        "--allow-remote-command-execution",
        action="store_true",
        help="with --run-containers, allow a --host other than loopback: anyone who reaches it can run commands on this host",
    )
    runtime.add_argument("--image-map", action="append", default=[], metavar="IMAGE_GLOB=DIR", help="put DIR first on PATH for images matching the glob (repeatable)")
    runtime.add_argument("--container-env", action="append", default=[], metavar="NAME=VALUE", help="environment for every container process (repeatable)")
    runtime.add_argument("--runtime-dir", default=None, help="where each pod's working directory is made (default: a temporary directory)")
    runtime.add_argument("--memory-poll", type=float, default=0.1, metavar="SECONDS", help="how often a container's memory is checked against its limit")
    p.add_argument("--log-level", default="INFO")
    return p


def _pairs(values: list[str], flag: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"podq kubesim: {flag} {value!r}: expected NAME=VALUE")
        pairs.append((key, rest))
    return tuple(pairs)


def limit_from_args(args: argparse.Namespace) -> LimitSettings:
    """The API limit settings the flags give (``--limit-NAME`` for each setting); on when --limit-rate or
    --limit-seats is given."""
    names = [name for name in LimitSettings().as_dict() if name != "enabled"]
    given = {name: getattr(args, f"limit_{name}") for name in names if getattr(args, f"limit_{name}") is not None}
    limit = LimitSettings()
    try:
        limit.update({**given, "enabled": args.limit_rate is not None or args.limit_seats is not None})
    except ValueError as exc:
        raise SystemExit(f"podq kubesim: the --limit-* flags: {exc}") from None
    if given and not limit.enabled:
        raise SystemExit("podq kubesim: the --limit-* flags need --limit-rate or --limit-seats")
    return limit


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    delays = KubeletDelays()
    delays.update({name: getattr(args, f"kubelet_{name}") for name in delays.as_dict()})
    namespaces = tuple(dict.fromkeys([*DEFAULT_NAMESPACES, *args.namespace]))
    return SimSettings(
        host=args.host,
        port=args.port,
        kubeconfig=str(Path(args.kubeconfig).absolute()),
        namespaces=namespaces,
        history_size=args.history_size,
        bookmark_interval=args.bookmark_interval,
        default_run_seconds=args.default_run_seconds,
        kubelet_paused=args.kubelet_paused,
        delays=delays,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file,
        token=args.token,
        request_log=args.request_log,
        run_containers=args.run_containers,
        allow_remote_command_execution=args.allow_remote_command_execution,
        image_map=_pairs(args.image_map, "--image-map"),
        container_env=_pairs(args.container_env, "--container-env"),
        runtime_dir=args.runtime_dir,
        memory_poll=args.memory_poll,
        limit=limit_from_args(args),
    )


def _apply_startup_faults(server: object, args: argparse.Namespace) -> None:
    from .server import KubeSimServer

    assert isinstance(server, KubeSimServer) and server.core is not None
    faults = server.core.faults
    for spec in args.latency:
        verb, _, value = spec.partition("=")
        seconds, _, jitter = value.partition(":")
        faults.set_latency(verb or "*", seconds=float(seconds), jitter=float(jitter or 0))
    for spec in args.fault:
        parts = spec.split(":")
        rule: dict[str, object] = {"action": parts[0]}
        if len(parts) > 1 and parts[1]:
            rule["verb"] = parts[1]
        if len(parts) > 2 and parts[2]:
            rule["rate"] = float(parts[2])
        if len(parts) > 3 and parts[3]:
            rule["namespace"] = parts[3]
        faults.add(**rule)


async def _serve(args: argparse.Namespace) -> int:
    from .server import KubeSimServer

    server = KubeSimServer(settings_from_args(args))
    await server.start()
    _apply_startup_faults(server, args)
    print(f"kubesim listening on {server.url} kubeconfig={server.kubeconfig} port={server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await asyncio.wait_for(server.stop(), timeout=10)
    return 0


def quiet_collector() -> None:
    """Keep the cyclic collector's passes short in a kubesim process.

    The event history keeps every pod version it holds alive (20,000 by default, each a
    nested JSON dict). A full collection walked them all (250+ ms), and a large young
    generation (thresholds of 10,000 × 20) made even a young pass take 70–100 ms; either
    pause stalled every API request and watch behind it, the tail of submit → running.
    Objects that survive a young pass are live pod versions, requests in flight and
    server state: they are moved to the permanent generation, so every pass walks only
    what was allocated since the last one. Reference counting still frees them; measured
    under load, a full collection of the frozen objects afterwards found no garbage (the
    stand-in makes no reference cycles that outlive a young pass).
    """
    gc.freeze()
    gc.set_threshold(1_000, 10, 10)
    gc.callbacks.append(_freeze_survivors)


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_collector()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(_serve(args))
    except UnsafeBind as exc:
        print(f"kubesim: refused: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kubesim: cannot start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
