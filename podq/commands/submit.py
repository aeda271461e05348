"""`podq submit`: put one job on podq:jobs."""
from __future__ import annotations

import json

from podq.broker.client.submit import submit
from podq.shared.records import KubernetesJob, TaskKey

from ._common import redis_from


def register(subparsers) -> None:
    parser = subparsers.add_parser("submit", help="submit one job")
    parser.add_argument("--scheduler-id", required=True)
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--try-number", type=int, default=1)
    parser.add_argument("--map-index", type=int, default=-1)
    parser.add_argument("--namespace")
    parser.add_argument("--pod-template", help="name of a template in PODQ_INTAKE_TEMPLATES_DIR")
    parser.add_argument("--pod-override", type=json.loads, help="JSON map merged into the pod")
    parser.add_argument("--no-check", action="store_true", help="skip the admission checks intake will run")
    parser.add_argument("command_args", nargs="*", metavar="ARG", help="the task's command")
    parser.set_defaults(run=run)


def run(args, settings) -> int:
    key = TaskKey(dag_id=args.dag_id, task_id=args.task_id, run_id=args.run_id,
                  try_number=args.try_number, map_index=args.map_index)
    job = KubernetesJob.new(scheduler_id=args.scheduler_id, key=key, command=args.command_args,
                            namespace=args.namespace, pod_template=args.pod_template,
                            pod_override=args.pod_override)
    entry = submit(redis_from(settings), job, settings=None if args.no_check else settings)
    print(f"{job.job_id} {entry}")
    return 0
