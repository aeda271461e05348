"""Executor-level figures: Airflow's KubernetesExecutor (default and tuned) against podq's executor.

Runs in .venv-airflow (`make bench-airflow`), with Airflow 3.3.2's real executor code. Each
executor is driven the way the scheduler loop drives it, in a process of its own (the "scheduler
process"): queue N ``ExecuteTask`` workloads, then ``heartbeat()`` + ``get_event_buffer()`` every
``--idle`` seconds until every task has its terminal event. One kubesim (simulated kubelet, a fixed
create latency, pods run ``--run-seconds``) serves all of them; podq's services (intake, workers,
watcher, Valkey) run beside it and their CPU is counted separately.

Per executor and run: tasks launched per second (pods accepted by the API, from kubesim's create
audit log), seconds until every result is back, and CPU-seconds of the scheduler process (itself
and its children, e.g. the KubernetesExecutor's watcher and Manager processes) per 1,000 tasks.

The KubernetesExecutor asks the metadata database for a task's state on success and before a
create (stale-workload check); there is no database here, so those two lookups answer from memory
(success, still queued): its figures leave out that database work.

    .venv-airflow/bin/python -m bench.airflow_executor [--tasks 1000] [--latency 0.025] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid

from .common import cpu_seconds, kubesim_process, machine, median, spread, target, wait_until_watching

VARIANTS = {
    "k8s-default": "KubernetesExecutor, default settings (worker_pods_creation_batch_size 1)",
    "k8s-tuned": "KubernetesExecutor, tuned (async_pod_creation, batch size 64, concurrency 64)",
    "podq": "podq's executor (PodqExecutor)",
}
TUNED = {"AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_CREATION_BATCH_SIZE": "64",
         "AIRFLOW__KUBERNETES_EXECUTOR__ASYNC_POD_CREATION": "True",
         "AIRFLOW__KUBERNETES_EXECUTOR__POD_CREATION_MAX_CONCURRENCY": "64"}


def airflow_env(home: str, kubeconfig: str, variant: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__API_AUTH__JWT_SECRET": "podq-bench-jwt-secret-0123456789abcdef",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
                "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": kubeconfig,
                "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
                "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": "default",
                "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": "apache/airflow",
                "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": "3.3.2"})
    template = os.path.join(home, "pod_template.yaml")
    with open(template, "w") as handle:
        handle.write("apiVersion: v1\nkind: Pod\nmetadata: {}\nspec:\n  restartPolicy: Never\n"
                     "  containers:\n    - name: base\n      image: apache/airflow:3.3.2\n")
    env["AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE"] = template
    if variant == "k8s-tuned":
        env.update(TUNED)
    return env


# -- the scheduler process ------------------------------------------------------------------------

def workloads(dag_id: str, count: int):
    from airflow.executors.workloads import ExecuteTask
    from airflow.executors.workloads.base import BundleInfo
    from airflow.executors.workloads.task import TaskInstanceDTO

    for index in range(count):
        ti = TaskInstanceDTO(id=uuid.uuid4(), dag_id=dag_id, task_id=f"t{index:04d}", run_id="bench", try_number=1,
                             map_index=-1, dag_version_id=uuid.uuid4(), queue="default", pool_slots=1,
                             priority_weight=1, executor_config={})
        yield ExecuteTask(ti=ti, token="token", dag_rel_path="dags/bench.py",
                          bundle_info=BundleInfo(name="dags-folder", version=None),
                          log_path=f"dag_id={dag_id}/task_id=t{index:04d}.log")


def make_executor(variant: str, *, parallelism: int, redis_url: str):
    from airflow.utils.state import TaskInstanceState

    if variant == "podq":
        from podq.airflow.config import load_config
        from podq.airflow.executor import PodqExecutor
        config = load_config(lambda option: {"redis_url": redis_url}.get(option), env={})
        return PodqExecutor(parallelism=parallelism, config=config)
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
    executor = KubernetesExecutor(parallelism=parallelism)
    # No metadata database here: the two lookups the executor makes answer from memory.
    executor._get_task_instance_state = lambda *args, **kwargs: TaskInstanceState.SUCCESS
    executor._should_create_pod_for_job = lambda *args, **kwargs: True
    return executor


def child(args) -> None:
    from airflow.utils.state import TaskInstanceState

    executor = make_executor(args.variant, parallelism=args.parallelism, redis_url=args.redis_url)
    executor.job_id = args.job_id
    executor.start()
    works = list(workloads(args.dag_id, args.tasks))
    keys = {work.ti.key for work in works}
    done: set = set()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.time()
    for work in works:
        executor.queue_workload(work, session=None)
    deadline = time.monotonic() + args.timeout
    while done != keys:
        executor.heartbeat()
        for key, (state, _info) in executor.get_event_buffer().items():
            if state in (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED) and key in keys:
                done.add(key)
        if time.monotonic() > deadline:
            raise SystemExit(f"{args.variant}: only {len(done)} of {len(keys)} results after {args.timeout} s")
        time.sleep(args.idle)
    finished = time.time()
    executor.end()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime - cpu_before + children.ru_utime + children.ru_stime
    print(json.dumps({"started": started, "finished": finished, "cpu": cpu}), flush=True)


# -- the driver -----------------------------------------------------------------------------------

def run_variant(variant: str, *, tasks: int, parallelism: int, idle: float, redis_url: str, kubeconfig: str,
                admin, podq_pids: list[int], run: int) -> dict[str, float]:
    home = tempfile.mkdtemp(prefix="podq-bench-airflow-")
    dag_id = f"b{run}{variant.replace('-', '')[:6]}{uuid.uuid4().hex[:4]}"
    services_before = cpu_seconds(podq_pids)
    done = subprocess.run([sys.executable, "-m", "bench.airflow_executor", "child", "--variant", variant,
                           "--tasks", str(tasks), "--parallelism", str(parallelism), "--idle", str(idle),
                           "--redis-url", redis_url, "--dag-id", dag_id, "--job-id", str(1000 + run)],
                          env=airflow_env(home, kubeconfig, variant), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    creates = admin.creates(name_prefix=dag_id.lower())
    if len(creates) != tasks:
        raise RuntimeError(f"{variant}: kubesim saw {len(creates)} creates for {tasks} tasks")
    launched = max(entry["time"] for entry in creates) - figures["started"]
    return {"launch_rate": tasks / launched, "results_s": figures["finished"] - figures["started"],
            "cpu_per_1000": 1000 * figures["cpu"] / tasks,
            "services_per_1000": 1000 * (cpu_seconds(podq_pids) - services_before) / tasks if variant == "podq" else 0.0}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="bench.airflow_executor")
    sub = parser.add_subparsers(dest="command")
    kid = sub.add_parser("child")
    kid.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    kid.add_argument("--tasks", type=int, required=True)
    kid.add_argument("--parallelism", type=int, required=True)
    kid.add_argument("--idle", type=float, required=True)
    kid.add_argument("--redis-url", required=True)
    kid.add_argument("--dag-id", required=True)
    kid.add_argument("--job-id", type=int, required=True)
    kid.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.025, help="kubesim create latency, seconds")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=1024)
    parser.add_argument("--idle", type=float, default=0.005, help="seconds between scheduler-loop heartbeats")
    parser.add_argument("--run-seconds", type=float, default=1.0, help="how long each pod runs")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=sorted(VARIANTS))
    parser.add_argument("--create-rate", type=float, default=0,
                        help="podq's shared create limit, pods/s (default 0: off, as in bench.launch; podq's "
                             "own default, 50, caps its executor at ~50 tasks/s; the KubernetesExecutor has none)")
    args = parser.parse_args(argv)
    if args.command == "child":
        child(args)
        return ""
    from podq.shared.settings import KubeSettings, load_settings
    from podq.stack import Stack, StackOptions

    rows: dict[str, list[dict[str, float]]] = {variant: [] for variant in args.variants}
    load_before = os.getloadavg()
    with kubesim_process("--latency", f"create={args.latency}", "--default-run-seconds", str(args.run_seconds)) \
            as (_, kubeconfig, admin, _sim_pid):
        settings = load_settings({}, kube=KubeSettings(kubeconfig=kubeconfig))
        options = StackOptions(workers=2, worker_concurrency=16, extra_env={"PODQ_INTAKE_JOBS_PER_MESSAGE": "8",
                                                                           "PODQ_WORKER_CREATE_RATE": str(args.create_rate)})
        with Stack(settings, options) as stack:
            wait_until_watching(admin)
            podq_pids = [process.pid for process in stack.processes.values()]
            if stack.redis is not None and getattr(stack.redis, "pid", None):
                podq_pids.append(stack.redis.pid)
            for run in range(args.runs):
                for variant in args.variants:
                    rows[variant].append(run_variant(
                        variant, tasks=args.tasks, parallelism=args.parallelism, idle=args.idle,
                        redis_url=stack.redis_url, kubeconfig=kubeconfig, admin=admin, podq_pids=podq_pids, run=run))
    lines = [f"### Executor level at {args.latency * 1000:.0f} ms create latency ({args.tasks} tasks per run, "
             f"{args.runs} runs, parallelism {args.parallelism}, pods run {args.run_seconds:g} s, podq create limit "
             f"{args.create_rate:g}/s (0: off); {machine()}; "
             f"load average before {load_before[0]:.1f})", "",
             "| executor | launched per second, median (min–max) | seconds until every result, median (min–max) | "
             "scheduler-process CPU-s per 1,000 tasks, median (min–max) | podq services' CPU-s per 1,000 tasks |",
             "| --- | --- | --- | --- | --- |"]
    for variant in args.variants:
        runs = rows[variant]
        column = {name: [run[name] for run in runs] for name in runs[0]}
        services = f"{median(column['services_per_1000']):.1f}" if variant == "podq" else "–"
        lines.append(f"| {VARIANTS[variant]} | **{median(column['launch_rate']):.1f}** ({spread(column['launch_rate'])}) | "
                     f"{median(column['results_s']):.1f} ({spread(column['results_s'])}) | "
                     f"**{median(column['cpu_per_1000']):.2f}** ({spread(column['cpu_per_1000'])}) | {services} |")
    text = "\n".join(lines)
    print(text, flush=True)
    if {"podq", "k8s-default", "k8s-tuned"} <= set(args.variants):
        rate = {variant: median([run["launch_rate"] for run in rows[variant]]) for variant in args.variants}
        cpu = {variant: median([run["cpu_per_1000"] for run in rows[variant]]) for variant in args.variants}
        latency = f"{args.latency * 1000:.0f} ms"
        target(f"podq executor launch rate / KubernetesExecutor default ({latency})", rate["podq"] / rate["k8s-default"],
               goal=10, unit="×")
        target(f"podq executor launch rate / KubernetesExecutor tuned ({latency})", rate["podq"] / rate["k8s-tuned"],
               goal=3, unit="×")
        target(f"scheduler CPU per task, podq / KubernetesExecutor default ({latency})",
               cpu["podq"] / cpu["k8s-default"], goal=0.1, unit="×", higher_is_better=False)
    return text


if __name__ == "__main__":
    main()
