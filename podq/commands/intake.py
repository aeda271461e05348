"""`podq intake`: run one intake consumer until interrupted."""
from __future__ import annotations

import threading

from podq.broker.control.operations import validate_control
from podq.broker.intake.service import Intake
from podq.broker.store.delayed import release_due
from podq.broker.store.ledger import Ledger
from podq.broker.store.trim import Trimmer
from podq.shared.loops import stop_on_signals

from ._common import redis_from


def register(subparsers) -> None:
    parser = subparsers.add_parser("intake", help="run intake (admission and dispatch to workers)")
    parser.add_argument("--consumer", help="consumer name in intake's group (default from host)")
    parser.add_argument("--check", action="store_true", help="exit 0 if Redis answers and the groups exist")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    client = redis_from(settings, block_ms=settings.intake.block_ms)
    ledger = Ledger(client)
    intake = Intake(client=client, settings=settings, consumer=args.consumer,
                    control_check=lambda record: validate_control(record, ledger),
                    periodic=[Trimmer(client, settings.trim).maybe_run,
                              lambda: release_due(client, per_message=settings.intake.jobs_per_message)])
    if args.check:
        intake.prepare()
        return 0 if client.ping() else 1
    stop = threading.Event()
    stop_on_signals(stop)
    intake.run(stop)
    return 0
