"""The last lines of a failed pod's log in its failure details (PODQ_WATCHER_FAILURE_LOG_LINES, opt-in; issue 20).

kubesim runs the pod's command for real (its container runtime), so the log is what the process printed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

from podq.broker.store.ledger import Ledger
from podq.kubesim.testing import fast_settings, running_kubesim
from podq.shared import naming
from podq.shared.states import State
from tests.support import watcher as h

SCRIPT = "import sys\nfor n in range(1, 8): print(f'line {n}', flush=True)\nsys.exit(3)"


@pytest.fixture
def env(redis_client, redis_url, tmp_path):
    settings = fast_settings(run_containers=True, image_map=(("apache/airflow*", str(Path(sys.executable).parent)),),
                             runtime_dir=str(tmp_path / "pods"))
    with running_kubesim(settings) as sim, h.environment(redis_client, redis_url, sim, tmp_path) as environment:
        yield environment


def launch_failing(env, item) -> None:
    """Seed the ledger and create the job's pod, whose container prints seven lines and exits 3."""
    ledger = Ledger(env.client)
    ledger.accept_many([(item, naming.pod_name_for(item.job_id, item.key))])
    ledger.mark_dispatched([item.job_id])
    body = h.pod_body(item)
    body["spec"]["containers"][0]["command"] = ["python", "-c", SCRIPT]
    created = env.api.create_namespaced_pod(item.namespace, body, _preload_content=False)
    ledger.mark_created(item.job_id, uid=orjson.loads(created.data)["metadata"]["uid"])


@pytest.mark.parametrize("lines", [3, 0])
def test_a_failed_pods_last_log_lines_are_in_its_failure_details_when_asked(env, lines):
    item = h.job(1)
    with env.watcher(failure_log_lines=lines):
        launch_failing(env, item)
        per_job = env.wait_terminal([item], timeout=60)
    failed = per_job[item.job_id][-1]
    assert failed.state is State.FAILED and failed.failure_details.exit_code == 3
    assert failed.failure_details.log_tail == (("line 5", "line 6", "line 7") if lines else None)
