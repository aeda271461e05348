"""`podq up`: run the embedded stack in the foreground until interrupted."""
from __future__ import annotations

import argparse

from podq.shared.clusters import check_name
from podq.shared.errors import PodqError
from podq.shared.secrets import scrub
from podq.stack import Stack, StackOptions

from ._common import Interrupt


def register(subparsers) -> None:
    parser = subparsers.add_parser("up", help="run the whole stack in the foreground")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--data-dir", help="keep Redis data and logs here (default: a temp dir)")
    parser.add_argument("--clusters", type=cluster_names, default=(), metavar="A,B",
                        help="a cell of several clusters, one kubesim each, the first the default "
                             "(per cluster --workers workers and a watcher; docs/operations.md, \"Clusters\")")
    parser.add_argument("--run-containers", action="store_true",
                        help="kubesim runs each pod's command on this host (loopback only; see docs/kubesim.md)")
    parser.add_argument("--image-map", action="append", default=[], metavar="IMAGE_GLOB=DIR",
                        help="with --run-containers: DIR first on PATH for images matching the glob (repeatable)")
    parser.add_argument("--container-env", action="append", default=[], metavar="NAME=VALUE",
                        help="with --run-containers: environment for every container process (repeatable)")
    parser.add_argument("--api-limit", type=float, metavar="PER_SECOND",
                        help="kubesim models the API server's limit: this many creates (mutating requests) per second "
                             "(API Priority and Fairness; see docs/kubesim.md)")
    parser.add_argument("--api-limit-seats", type=int, metavar="N",
                        help="with --api-limit: mutating requests executing at once (default: a tenth of the rate)")
    parser.set_defaults(run=run)


def cluster_names(text: str) -> tuple[str, ...]:
    """``--clusters a,b``: cluster names, checked as the settings check them."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise argparse.ArgumentTypeError("expected cluster names, e.g. a,b")
    for name in names:
        try:
            check_name(name, where="--clusters")
        except PodqError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def kubesim_lines(stack: Stack) -> str:
    """Where each cluster's kubesim listens (with ``--clusters``)."""
    return "".join(f"\n  cluster {name:<8} kubesim {url}  kubeconfig {stack.kubeconfigs[name]}"
                   for name, url in stack.kubesim_urls.items())


def metrics_lines(stack: Stack) -> str:
    """One line per service naming where it serves its Prometheus metrics."""
    width = max(len(name) for name in stack.metrics)
    return "\n".join(f"  metrics {name:<{width}} {url}" for name, url in stack.metrics.items())


def kubesim_args(args) -> tuple[str, ...]:
    """The kubesim flags `podq up` passes on (its container runtime and its API limit are opt-in)."""
    return _runtime_args(args) + _limit_args(args)


def _runtime_args(args) -> tuple[str, ...]:
    if not args.run_containers:
        if args.image_map or args.container_env:
            raise PodqError("--image-map and --container-env need --run-containers")
        return ()
    extra = ["--run-containers"]
    extra += [f"--image-map={value}" for value in args.image_map]
    extra += [f"--container-env={value}" for value in args.container_env]
    return tuple(extra)


def runtime_line(args, stack: Stack) -> str:
    """Whether the pods' commands really run: on kubesim's default they are simulated."""
    if not stack.kubesim_url:
        return "  pods    created in the cluster of PODQ_KUBE_KUBECONFIG (or in-cluster)"
    if args.run_containers:
        return "  pods    kubesim runs each pod's command on this host (--run-containers)"
    return ("  pods    SIMULATED: kubesim runs no command; a pod succeeds after its run time unless its\n"
            "          annotations say otherwise (docs/kubesim.md). `podq up --run-containers` runs them here.")


def _limit_args(args) -> tuple[str, ...]:
    if args.api_limit is None:
        if args.api_limit_seats is not None:
            raise PodqError("--api-limit-seats needs --api-limit")
        return ()
    if args.api_limit <= 0 or (args.api_limit_seats is not None and args.api_limit_seats < 1):
        raise PodqError(f"--api-limit must be > 0 and --api-limit-seats >= 1 (got {args.api_limit}, {args.api_limit_seats})")
    extra = [f"--limit-rate={args.api_limit:g}"]
    if args.api_limit_seats is not None:
        extra.append(f"--limit-seats={args.api_limit_seats}")
    return tuple(extra)


def run(args, settings) -> int:
    stop = Interrupt()
    options = StackOptions(workers=args.workers, data_dir=args.data_dir, restart=True, kubesim_args=kubesim_args(args),
                           clusters=args.clusters)
    with Stack(settings, options) as stack:
        print(f"""podq is up.
  redis   {scrub(stack.redis_url)}
  kubesim {stack.kubesim_url or '(external cluster)'}  kubeconfig {stack.kubeconfig}{f'  (API limit {args.api_limit:g} creates/s)' if args.api_limit else ''}{kubesim_lines(stack)}
{runtime_line(args, stack)}
  logs    {stack.log_dir}
{metrics_lines(stack)}

Submit a job and read its results from another shell:
  export PODQ_REDIS_URL={scrub(stack.redis_url)}
  podq submit --scheduler-id me --dag-id example --task-id hello --run-id r1 -- echo hello
  podq results --scheduler-id me --follow

Ctrl-C stops every service.""", flush=True)
        while not stop.wait(1.0):
            dead = stack.dead()
            if dead:
                print(f"podq up: service(s) exited: {', '.join(dead)}; see {stack.log_dir}")
                return 1
    return stop.exit_code()
