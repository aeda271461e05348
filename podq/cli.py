"""The `podq` command: one subcommand per module in podq/commands/, and four services
(intake, worker, watcher, kubesim) that parse their own flags."""
from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys

from podq.broker.store.reach import RedisAuthError, RedisUnreachableError
from podq.shared.errors import PodqError
from podq.shared.secrets import ScrubbingFormatter, scrub
from podq.shared.settings import load_settings

# Each module defines register(subparsers) and a run(args, settings) -> int.
COMMANDS = ("up", "demo", "submit", "results", "job", "status", "settings", "redis_acl")
# Exit codes (docs/operations.md, "Exit codes"): 0 done; 1 done, and what was asked for failed (a job
# ended otherwise than planned, a service died, no such job or scheduler); 2 bad input or settings (as
# argparse uses it); sysexits.h's numbers where one fits; 128 + the signal's number when stopped by one.
EXIT_CODES = ((RedisAuthError, 77),          # EX_NOPERM: Redis refused the user or password
              (RedisUnreachableError, 69),   # EX_UNAVAILABLE: no Redis answered at PODQ_REDIS_URL
              (PodqError, 2))
EXIT_HELP = """exit codes: 0 done; 1 what was asked for failed; 2 bad input or settings; 69 Redis unreachable;
77 Redis refused the credentials; 130 (Ctrl-C) or 143 (SIGTERM) stopped by a signal (docs/operations.md)"""
# name -> (module whose main(argv[, settings]) runs it, help)
PASSTHROUGH = {
    "intake": ("podq.broker.intake.main", "run intake (admission and dispatch to workers)"),
    "worker": ("podq.workers.main", "run a Celery worker that creates pods"),
    "watcher": ("podq.watcher.main", "run the watcher daemon"),
    "kubesim": ("podq.kubesim.cli", "run kubesim, the Kubernetes API stand-in"),
}


def configure_logging(level: str, *, json_format: bool) -> None:
    """The only place podq configures logging."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        from podq.logjson import JsonFormatter
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
    # Every line, whoever logs it (podq, Celery, kombu, the clients), with URL passwords and tokens masked.
    handler.setFormatter(ScrubbingFormatter(formatter))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def freeze_imports() -> None:
    """Take what the long-running services import out of the cyclic collector's sight.

    The kubernetes client and Celery leave a large heap of objects that live as long as
    the process; every full collection walked them all, a pause that showed in the tail
    of submit → running latency. ``gc.freeze`` moves them to the permanent generation.
    """
    importlib.import_module("kubernetes.client")
    importlib.import_module("celery.worker")
    gc.freeze()


def version_line() -> str:
    """``podq --version``: the package's version and the wire protocol it writes (docs/protocol.md)."""
    from podq import __version__
    from podq.shared.codec import SCHEMA
    return f"podq {__version__} (wire protocol {SCHEMA})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podq", description="Launch Kubernetes pods for a scheduler and stream their fate back.",
                                     epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("--log-level", default="warning", help="debug, info, warning (default) or error")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"podq.commands.{name}")
        module.register(subparsers)
    for name, (_module, text) in PASSTHROUGH.items():
        subparsers.add_parser(name, help=f"{text} (`podq {name} --help` for its options)", add_help=False)
    return parser


def logging_options(argv: list[str]) -> tuple[str | None, bool, list[str]]:
    """``--log-level``/``--log-json`` written before the command: (level or None, json, the rest).

    The services parse their own flags after their name, so podq's logging options must come
    first (``podq --log-json worker``), as for every other command.
    """
    level, json_format, index = None, False, 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--log-json":
            json_format, index = True, index + 1
        elif arg == "--log-level" and index + 1 < len(argv):
            level, index = argv[index + 1], index + 2
        elif arg.startswith("--log-level="):
            level, index = arg.split("=", 1)[1], index + 1
        else:
            break
    return level, json_format, argv[index:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    level, json_format, rest = logging_options(argv)
    if rest and rest[0] in PASSTHROUGH:
        configure_logging(level or "info", json_format=json_format)
        module = importlib.import_module(PASSTHROUGH[rest[0]][0])
        if rest[0] == "kubesim":  # kubesim is not podq: no PODQ_ settings
            return module.main(rest[1:])
        freeze_imports()
        return module.main(rest[1:], load_settings())
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json_format=args.log_json)
    try:
        return args.run(args, load_settings())
    except PodqError as exc:
        print(f"podq {args.command}: {scrub(str(exc))}", file=sys.stderr)
        return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))
    except KeyboardInterrupt:
        return 130
