"""``podq watcher``: run the watcher daemon, or ``--check`` a running one.

Importing this module has no side effects; :func:`main` is the entry point
(``podq.cli`` passes the arguments after ``watcher`` and the loaded settings).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading

from podq.shared import clusters, metrics
from podq.shared.errors import PodqError
from podq.shared.loops import stop_on_signals
from podq.shared.settings import Settings
from podq.shared.secrets import scrub

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podq watcher",
                                     description="Watch podq's pods and publish their fate to the results streams.")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                       help="namespace to watch (repeatable; default PODQ_WATCHER_NAMESPACES or PODQ_KUBE_NAMESPACE)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace")
    parser.add_argument("--cluster", metavar="NAME",
                        help="the cell's cluster to watch (default PODQ_KUBE_CLUSTER, the default cluster)")
    parser.add_argument("--check", action="store_true",
                        help="exit 0 if the watcher running for this scope is healthy, else 1")
    parser.add_argument("--instance", help="this replica's name in the lease (default host-pid)")
    parser.add_argument("--health-file", help="health file path (default PODQ_WATCHER_HEALTH_FILE or per scope)")
    return parser


def main(argv: list[str] | None, settings: Settings) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from .daemon import scopes_for
    from .health import check, default_health_file, progress_limit

    try:
        settings = clusters.settings_for(settings, args.cluster or settings.kube.cluster)
    except PodqError as exc:
        print(f"podq watcher: {scrub(str(exc))}", file=sys.stderr)
        return 2
    scopes = scopes_for(settings, args.namespace, all_namespaces=args.all_namespaces)
    health_file = args.health_file or settings.watcher.health_file or default_health_file(
        [scope.name for scope in scopes])
    if args.check:
        watcher = settings.watcher
        healthy, why = check(health_file, max_age=watcher.health_max_age, progress_limit=progress_limit(watcher))
        print(why, file=sys.stdout if healthy else sys.stderr)
        return 0 if healthy else 1
    from .daemon import Watcher

    try:
        watcher = Watcher(settings, namespaces=args.namespace, all_namespaces=args.all_namespaces,
                          instance=args.instance, health_file=health_file)
    except PodqError as exc:
        print(f"podq watcher: {scrub(str(exc))}", file=sys.stderr)
        return 2
    if threading.current_thread() is threading.main_thread():
        stop_on_signals(watcher.stopping)
    watcher.start()
    metrics.start(settings.metrics, service=f"watcher {watcher.instance}", ping=watcher.ping,
                  stop=watcher.stopping, health=watcher.live)
    code = watcher.run()
    if code:
        print(f"podq watcher: {watcher.failed}", file=sys.stderr)
    return code
