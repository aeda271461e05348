"""`podq job`: look at or cancel one job."""
from __future__ import annotations

from podq.broker.client.jobs import job_status
from podq.broker.client.control import revoke
from podq.shared.states import LedgerState

from ._common import redis_from


def register(subparsers) -> None:
    parser = subparsers.add_parser("job", help="status or cancel of one job")
    actions = parser.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="ledger state, pod and last result")
    status.add_argument("job_id")
    cancel = actions.add_parser("cancel", help="revoke the job (a revoke record on podq:control)")
    cancel.add_argument("job_id")
    cancel.add_argument("--reason")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    client = redis_from(settings)
    status = job_status(client, args.job_id)
    if status is None:
        print(f"podq job: no job {args.job_id} in the ledger")
        return 1
    entry = status.entry
    if args.action == "cancel":
        if entry.state in (LedgerState.TERMINAL, LedgerState.REVOKED) or entry.terminal_state:
            print(f"podq job: job {args.job_id} has already ended ({entry.terminal_state or entry.state.value})")
            return 1
        control_entry = revoke(client, job_id=args.job_id, scheduler_id=entry.scheduler_id, reason=args.reason)
        print(f"revoke requested for {args.job_id} (podq:control entry {control_entry})")
        return 0
    for line in status.lines():
        print(line)
    return 0
