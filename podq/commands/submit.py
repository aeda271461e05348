"""`podq submit`: put one job on podq:jobs and say what intake made of it.

No check runs here with this shell's settings (they need not be intake's): the command waits, up to
``--wait`` seconds, for intake's own verdict in the ledger, and prints it. A job that exists already is
not sent again; its state is printed instead.
"""
from __future__ import annotations

import json
import sys
import time

from podq.broker.client.jobs import job_status
from podq.broker.client.submit import SubmitError, submit
from podq.shared.records import KubernetesJob, TaskKey

from ._common import Interrupt, redis_from

POLL_SECONDS = 0.1


def register(subparsers) -> None:
    parser = subparsers.add_parser("submit", help="submit one job and print intake's verdict")
    parser.add_argument("--scheduler-id", required=True)
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--try-number", type=int, default=1)
    parser.add_argument("--map-index", type=int, default=-1)
    parser.add_argument("--namespace")
    parser.add_argument("--pod-template", help="name of a template in intake's PODQ_INTAKE_TEMPLATES_DIR")
    parser.add_argument("--pod-override", type=json.loads, help="JSON map merged into the pod")
    parser.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for intake's verdict (default 10; 0: do not wait)")
    parser.add_argument("command_args", nargs="*", metavar="ARG", help="the task's command")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    key = TaskKey(dag_id=args.dag_id, task_id=args.task_id, run_id=args.run_id,
                  try_number=args.try_number, map_index=args.map_index)
    job = KubernetesJob.new(scheduler_id=args.scheduler_id, key=key, command=args.command_args,
                            namespace=args.namespace, pod_template=args.pod_template,
                            pod_override=args.pod_override)
    client = redis_from(settings)
    existing = job_status(client, job.job_id)
    if existing is not None:
        print(f"{job.job_id} exists already ({job.key}): {existing.summary()}; not submitted again "
              f"(a new try is --try-number {key.try_number + 1})")
        return 0
    entry_id = submit(client, job)
    if args.wait <= 0:
        print(f"{job.job_id} submitted (podq:jobs entry {entry_id})")
        return 0
    interrupt = Interrupt()
    deadline = time.monotonic() + args.wait
    while not interrupt.wait(POLL_SECONDS):
        status = job_status(client, job.job_id)
        if status is not None and status.entry.refused:
            raise SubmitError(f"intake refused job {job.job_id} ({job.key}): {status.entry.refused}")
        if status is not None:
            print(f"{job.job_id} accepted by intake: {status.summary()}")
            return 0
        if time.monotonic() > deadline:
            print(f"{job.job_id} submitted (podq:jobs entry {entry_id})")
            print(f"podq submit: intake has not read it within {args.wait:g} s; is intake running? "
                  f"(`podq status` shows the jobs stream's backlog)", file=sys.stderr)
            return 0
    return interrupt.exit_code()
