"""A real Airflow 3 for tests: API server, DAG processor and scheduler as processes.

Used by tests/airflow/test_real_airflow.py (only in .venv-airflow). Each instance has its own
AIRFLOW_HOME and metadata database (a PostgreSQL database, tests/support/postgres.py); the executor
is a setting. The test reads task-instance states from the metadata database and acts through the
REST API (the simple auth manager with every user an admin, loopback only).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from podq.shared.procs import die_with_parent

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
JWT_SECRET = "podq-airflow-proof-jwt-secret-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def task_env(*, api_port: int, dags_folder: Path, home: Path) -> dict[str, str]:
    """What every task pod's process needs to reach this Airflow (kubesim's --container-env)."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # Fifty task processes at once on a shared 2-core machine: Airflow's 5 s execution-API timeout made
        # tasks fail on ReadTimeout under either executor (its own limit, not the executor's).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
    }


class AirflowSystem:
    """One Airflow instance; use as a context manager (stops every process it started)."""

    def __init__(self, *, home: Path, api_port: int, dags_folder: Path, executor: str, database_url: str,
                 settings: dict[str, str], triggerer: bool = False, schedulers: int = 1) -> None:
        self.home = home
        self.triggerer = triggerer
        self.schedulers = schedulers
        self.api_port = api_port
        self.dags_folder = dags_folder
        self.executor = executor
        self.home.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self._engine = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Custom triggers live beside the DAGs; the triggerer imports them by class path.
            "PYTHONPATH": str(dags_folder),
            **settings,
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    # -- processes ---------------------------------------------------------------------------------

    def migrate(self, *, timeout: float = 600) -> None:
        done = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def spawn(self, name: str, *argv: str) -> subprocess.Popen:
        log_path = self.home / f"{name}-{len(self.logs)}.log"
        self.logs[name] = log_path
        with open(log_path, "wb") as out:
            process = subprocess.Popen([AIRFLOW, *argv], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True, preexec_fn=die_with_parent)
        self.processes[name] = process
        return process

    def start(self, *, timeout: float = 300) -> "AirflowSystem":
        self.migrate()
        self.spawn("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1")
        self.spawn("dag-processor", "dag-processor")
        for index in range(self.schedulers):
            self.start_scheduler(self.scheduler_name(index))
        if self.triggerer:
            self.spawn("triggerer", "triggerer")
        self.wait(lambda: self.health().get("metadatabase", {}).get("status") == "healthy", timeout=timeout,
                  what="the API server")
        return self

    @staticmethod
    def scheduler_name(index: int) -> str:
        return "scheduler" if index == 0 else f"scheduler-{index}"

    def start_scheduler(self, name: str = "scheduler") -> subprocess.Popen:
        return self.spawn(name, "scheduler")

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def close(self) -> None:
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()

    def __enter__(self) -> "AirflowSystem":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def dead(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs.get(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""

    def wait(self, condition, *, timeout: float, what: str, interval: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = condition()
            except (OSError, urllib.error.URLError):
                value = None
            if value:
                return value
            dead = self.dead()
            if dead:
                raise AssertionError(f"airflow {', '.join(dead)} exited while waiting for {what}:\n"
                                     + "\n".join(self.tail(name) for name in dead))
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)

    # -- REST API ----------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def health(self) -> dict:
        return self.api("GET", "/api/v2/monitor/health")

    def wait_for_dags(self, dag_ids: list[str], *, timeout: float = 300) -> None:
        def parsed():
            known = {dag["dag_id"] for dag in self.api("GET", "/api/v2/dags?limit=100")["dags"]}
            return set(dag_ids) <= known
        self.wait(parsed, timeout=timeout, what=f"the DAG processor to parse {dag_ids}")

    def trigger(self, dag_id: str, run_id: str) -> None:
        self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})

    def clear(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.api("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                 {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "only_failed": False,
                  "reset_dag_runs": True})

    # -- metadata database (read only) -------------------------------------------------------------

    def _rows(self, query: str) -> list[tuple]:
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.database_url, poolclass=sqlalchemy.pool.NullPool)
        with self._engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sqlalchemy.text(query))]

    def task_instances(self) -> dict[tuple[str, str, int], tuple[str | None, int]]:
        """(dag_id, task_id, map_index) -> (state, try_number), for every task instance."""
        rows = self._rows("SELECT dag_id, task_id, map_index, state, try_number FROM task_instance")
        return {(dag_id, task_id, map_index): (state, try_number)
                for dag_id, task_id, map_index, state, try_number in rows}

    def task_instances_of_run(self, dag_id: str, run_id: str) -> dict[tuple[str, int], tuple[str | None, int]]:
        """(task_id, map_index) -> (state, try_number) of one DAG run."""
        rows = self._rows("SELECT task_id, map_index, state, try_number FROM task_instance "
                          f"WHERE dag_id = '{dag_id}' AND run_id = '{run_id}'")
        return {(task_id, map_index): (state, try_number) for task_id, map_index, state, try_number in rows}

    def start_dates(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """task_id -> start_date of one DAG run's task instances that started."""
        rows = self._rows("SELECT task_id, start_date FROM task_instance "
                          f"WHERE dag_id = '{dag_id}' AND run_id = '{run_id}' AND start_date IS NOT NULL")
        return dict(rows)

    def external_executor_id(self, dag_id: str, task_id: str, *, try_number: int) -> str | None:
        """The task instance's external_executor_id while it is at ``try_number`` (the podq job id once
        the scheduler took the executor's queued event)."""
        rows = self._rows("SELECT external_executor_id, try_number FROM task_instance "
                          f"WHERE dag_id = '{dag_id}' AND task_id = '{task_id}' AND map_index = -1")
        return next((value for value, number in rows if number == try_number and value and len(value) == 32),
                    None)

    def queued_by(self) -> dict[int, int]:
        """Scheduler job id -> how many task instances it queued last (task_instance.queued_by_job_id)."""
        rows = self._rows("SELECT queued_by_job_id, count(*) FROM task_instance "
                          "WHERE queued_by_job_id IS NOT NULL GROUP BY queued_by_job_id")
        return {job_id: count for job_id, count in rows}

    def scheduler_jobs(self) -> list[tuple[int, str]]:
        return self._rows("SELECT id, state FROM job WHERE job_type = 'SchedulerJob' ORDER BY id")


# -- a podq stack for real Airflows, and Airflows on it ------------------------------------------------

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv-airflow" / "bin"
PODQ_EXECUTOR = "podq.airflow.executor.PodqExecutor"
K8S_EXECUTOR = "KubernetesExecutor"
IMAGE = "apache/airflow:3.3.2"
TEMPLATE = f"""apiVersion: v1
kind: Pod
metadata: {{}}
spec:
  restartPolicy: Never
  containers:
    - name: base
      image: {IMAGE}
"""


@contextlib.contextmanager
def airflow_world(root: Path, *, dags_folder: Path, omit_task_env: tuple[str, ...] = (),
                  clusters: tuple[str, ...] = (), podq_env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """podq's stack on kubesim with the container runtime (the image mapped to .venv-airflow), a
    PostgreSQL server, and the API port every Airflow on it will use (the task pods' env names it).

    ``omit_task_env``: variables kubesim does not give the task processes (the pod template must).
    ``clusters``: a cell of these clusters, each its own kubesim (the first the default).
    ``podq_env``: settings for podq's services (``PODQ_*``)."""
    from podq.kubesim.admin import Admin
    from podq.shared.settings import load_settings
    from podq.stack import Stack, StackOptions
    from tests.support.postgres import Postgres

    templates = root / "templates"
    templates.mkdir()
    (templates / "worker.yaml").write_text(TEMPLATE)
    api_port = free_port()
    env = {name: value for name, value in task_env(api_port=api_port, dags_folder=dags_folder,
                                                   home=root / "task-home").items() if name not in omit_task_env}
    options = StackOptions(
        workers=1, worker_concurrency=16, data_dir=str(root / "stack"),
        kubesim_args=("--run-containers", f"--image-map=apache/airflow*={VENV_BIN}",
                      *(f"--container-env={name}={value}" for name, value in env.items())),
        extra_env={"PODQ_INTAKE_TEMPLATES_DIR": str(templates), **(podq_env or {})}, clusters=clusters)
    with Postgres(free_port()) as postgres, Stack(load_settings({}), options) as stack:
        yield {"root": root, "stack": stack, "templates": templates, "api_port": api_port,
               "admin": Admin(stack.kubesim_url), "postgres": postgres, "dags": dags_folder,
               "task_home": root / "task-home"}


def podq_airflow(world: dict[str, Any], name: str, **options: Any) -> AirflowSystem:
    """An Airflow whose executor is podq's, on ``world``'s stack."""
    stack = world["stack"]
    return AirflowSystem(home=world["root"] / name, api_port=world["api_port"], dags_folder=world["dags"],
                         executor=PODQ_EXECUTOR, database_url=world["postgres"].create_database(name.replace("-", "_")),
                         settings={
                             "AIRFLOW__PODQ_EXECUTOR__REDIS_URL": stack.redis_url,
                             "AIRFLOW__PODQ_EXECUTOR__POD_TEMPLATE_FILE": str(world["templates"] / "worker.yaml"),
                             "AIRFLOW__PODQ_EXECUTOR__IMAGE": IMAGE,
                             "AIRFLOW__PODQ_EXECUTOR__LOGS_FROM_KUBERNETES": "true",
                             "AIRFLOW__PODQ_EXECUTOR__KUBE_CONFIG_FILE": stack.kubeconfig,
                         }, **options)


def kubernetes_airflow(world: dict[str, Any], name: str, **options: Any) -> AirflowSystem:
    """An Airflow with its own KubernetesExecutor on ``world``'s kubesim: the reference."""
    repository, tag = IMAGE.split(":")
    return AirflowSystem(home=world["root"] / name, api_port=world["api_port"], dags_folder=world["dags"],
                         executor=K8S_EXECUTOR, database_url=world["postgres"].create_database(name.replace("-", "_")),
                         settings={
                             "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": world["stack"].kubeconfig,
                             "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
                             "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": "default",
                             "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(world["templates"] / "worker.yaml"),
                             "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": repository,
                             "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": tag,
                             "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_CREATION_BATCH_SIZE": "32",
                         }, **options)
