"""The Airflow task pod template docs/airflow.md documents, run by a real Airflow 3 through podq.

deploy/kubernetes/base/templates/airflow-task.yaml is edited as docs/airflow.md ("The task pod
template") says (the API server's URL), mounted as podq's templates directory and named by
``[podq_executor] pod_template``. kubesim gives the task processes no Execution API URL here: each
task reaches the API server through what the template carries, or fails. Its
``metadata.name: placeholder-name`` is replaced without a warning.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.airflow_system import PODQ_EXECUTOR, AirflowSystem, airflow_world

pytestmark = pytest.mark.timeout(1200)  # real processes on a shared machine: minutes, not seconds

ROOT = Path(__file__).parents[2]
DAGS = Path(__file__).parent / "dags"
DOCUMENTED = ROOT / "deploy" / "kubernetes" / "base" / "templates" / "airflow-task.yaml"
DOCUMENTED_URL = "http://airflow-api-server:8080/execution/"
URL_SETTING = "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"


def test_docs_airflow_shows_the_template_that_ships():
    doc = (ROOT / "docs" / "airflow.md").read_text()
    assert DOCUMENTED.read_text() in doc   # the page shows the file as it is
    assert f"value: {DOCUMENTED_URL}" in DOCUMENTED.read_text()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with airflow_world(tmp_path_factory.mktemp("airflow-template"), dags_folder=DAGS,
                       omit_task_env=(URL_SETTING,)) as running:
        yield running


def test_a_task_runs_with_the_documented_template(world):
    # The one edit docs/airflow.md asks for: the URL of this Airflow's API server.
    template = DOCUMENTED.read_text().replace(DOCUMENTED_URL, f"http://127.0.0.1:{world['api_port']}/execution/")
    (world["templates"] / "airflow-task.yaml").write_text(template)
    system = AirflowSystem(home=world["root"] / "airflow", api_port=world["api_port"], dags_folder=world["dags"],
                           executor=PODQ_EXECUTOR, database_url=world["postgres"].create_database("template"),
                           settings={"AIRFLOW__PODQ_EXECUTOR__REDIS_URL": world["stack"].redis_url,
                                     "AIRFLOW__PODQ_EXECUTOR__POD_TEMPLATE": "airflow-task"})
    with system:
        system.wait_for_dags(["proof_mapped"])
        system.trigger("proof_mapped", "template_run")

        def finished():
            instances = system.task_instances_of_run("proof_mapped", "template_run")
            done = {key: value for key, value in instances.items() if value[0] in ("success", "failed")}
            return instances if instances and len(done) == len(instances) else None
        states = system.wait(finished, timeout=600, what="proof_mapped's tasks to finish")
    assert {state for state, _try in states.values()} == {"success"}, states
    worker_logs = "".join(path.read_text(errors="replace") for path in world["stack"].log_dir.glob("worker-*.log"))
    assert "name/namespace set by" not in worker_logs
