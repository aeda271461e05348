"""`podq redis-acl`: Redis ACL users for each podq role, in the server's ACL file format.

The output is meant to be the server's whole ACL file: its first line turns the server's `default`
user off (`--keep-default` leaves that line out). With ``--env-dir``, each role's PODQ_REDIS_URL
(``--url`` with the role's user and password put in) is written to ``<role>.env`` there, the files a
kustomize secretGenerator reads (deploy/kubernetes/overlays/production).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from podq.broker.store.acl import DEFAULT_OFF, url_for, users
from podq.shared.errors import SettingsError


def register(subparsers) -> None:
    parser = subparsers.add_parser("redis-acl", help="print Redis ACL users for each role (ACL file lines)")
    parser.add_argument("--scheduler", action="append", default=[], metavar="ID",
                        help="make a user for this scheduler id (repeat for several)")
    parser.add_argument("--password", action="append", default=[], metavar="ROLE=PASSWORD",
                        help="a role's password (producer, intake, worker, watcher, scheduler:<id>); "
                             "the others are generated")
    parser.add_argument("--prefix", default="podq-", help="user name prefix (default podq-)")
    parser.add_argument("--keep-default", action="store_true",
                        help="leave the server's `default` user as it is (by default the output turns it off)")
    parser.add_argument("--env-dir", metavar="DIR",
                        help="also write each role's PODQ_REDIS_URL to DIR/<role>.env (needs --url)")
    parser.add_argument("--url", metavar="URL",
                        help="with --env-dir: the Redis URL without credentials (redis://, rediss://, "
                             "redis+sentinel://…/<master>/<db>)")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    passwords = {}
    for item in args.password:
        role, sep, password = item.partition("=")
        if not sep or not password:
            raise SettingsError(f"--password: expected ROLE=PASSWORD, got {role!r}")
        passwords[role] = password
    if bool(args.env_dir) != bool(args.url):
        raise SettingsError("--env-dir and --url go together")
    chosen = users(schedulers=tuple(args.scheduler), passwords=passwords, prefix=args.prefix)
    if args.env_dir:
        write_env_files(Path(args.env_dir), chosen, url=args.url, prefix=args.prefix)
    if args.keep_default:
        print("podq redis-acl: the server's `default` user is left as the server configures it (often on, "
              "with no password: a superuser open to anyone who reaches the port)", file=sys.stderr)
    else:
        print(DEFAULT_OFF)
        print("podq redis-acl: the first line turns the server's `default` user off; an administrator "
              "needs a user of their own (add it to the file)", file=sys.stderr)
    for user in chosen:
        print(user.line())
    return 0


def write_env_files(folder: Path, chosen, *, url: str, prefix: str) -> None:
    """One ``<role>.env`` per user (readable by its owner only): ``PODQ_REDIS_URL=<url with credentials>``."""
    folder.mkdir(parents=True, exist_ok=True)
    for user in chosen:
        role = user.name.removeprefix(prefix)
        path = folder / f"{role}.env"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(f"PODQ_REDIS_URL={url_for(url, user)}\n")
