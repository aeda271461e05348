"""`podq redis-acl`: Redis ACL users for each podq role, in the server's ACL file format."""
from __future__ import annotations

from podq.broker.store.acl import users
from podq.shared.errors import SettingsError


def register(subparsers) -> None:
    parser = subparsers.add_parser("redis-acl", help="print Redis ACL users for each role (ACL file lines)")
    parser.add_argument("--scheduler", action="append", default=[], metavar="ID",
                        help="make a user for this scheduler id (repeat for several)")
    parser.add_argument("--password", action="append", default=[], metavar="ROLE=PASSWORD",
                        help="a role's password (producer, intake, worker, watcher, scheduler:<id>); "
                             "the others are generated")
    parser.add_argument("--prefix", default="podq-", help="user name prefix (default podq-)")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    passwords = {}
    for item in args.password:
        role, sep, password = item.partition("=")
        if not sep or not password:
            raise SettingsError(f"--password: expected ROLE=PASSWORD, got {role!r}")
        passwords[role] = password
    for user in users(schedulers=tuple(args.scheduler), passwords=passwords, prefix=args.prefix):
        print(user.line())
    return 0
