"""`podq job`: look at or cancel one job."""
from __future__ import annotations

from podq.broker.ledger import Ledger
from podq.broker.submit import revoke

from ._common import redis_from


def register(subparsers) -> None:
    parser = subparsers.add_parser("job", help="status or cancel of one job")
    actions = parser.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="ledger state, pod and last result")
    status.add_argument("job_id")
    cancel = actions.add_parser("cancel", help="revoke the job")
    cancel.add_argument("job_id")
    cancel.add_argument("--reason")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    client = redis_from(settings)
    entry = Ledger(client).get(args.job_id)
    if entry is None or entry.state is None:
        print(f"podq job: no job {args.job_id} in the ledger")
        return 1
    if args.action == "cancel":
        print(revoke(client, job_id=args.job_id, scheduler_id=entry.scheduler_id, reason=args.reason))
        return 0
    print(f"job       {entry.job_id}\nstate     {entry.state.value}\nscheduler {entry.scheduler_id}\n"
          f"pod       {entry.namespace}/{entry.pod_name} uid={entry.uid or '-'}\n"
          f"result    {entry.terminal_state or entry.last_state or '-'}")
    return 0
