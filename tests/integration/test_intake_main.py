"""``podq intake`` as its entry point runs it: the consumer loop and the housekeeping loop, stoppable."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

from podq.broker.client.submit import submit
from podq.broker.intake.main import IntakeService, main
from podq.broker.store import keys
from podq.broker.store.delayed import delay_job
from podq.broker.store.ledger import Ledger
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import IntakeSettings, load_settings
from podq.shared.states import LedgerState
from tests.support import stop_process, wait_for
from tests.support.workers import PODQ


def settings_for(redis_url: str):
    return load_settings({"PODQ_REDIS_URL": redis_url}, intake=IntakeSettings(block_ms=20))


def test_check_answers_for_a_reachable_redis_and_names_a_missing_url(redis_url, capsys):
    assert main(["--check"], settings_for(redis_url)) == 0
    assert main(["--check"], load_settings({})) == 2
    assert "PODQ_REDIS_URL is not set" in capsys.readouterr().err


def test_both_loops_run_until_stopped(redis_client, redis_url):
    service = IntakeService(settings_for(redis_url), consumer="main-test")
    thread = threading.Thread(target=lambda: setattr(service, "code", service.run()), name="intake-under-test")
    thread.start()
    try:
        job = KubernetesJob.new(scheduler_id="s", key=TaskKey(dag_id="d", task_id="t", run_id="r"))
        submit(redis_client, job)
        ledger = Ledger(redis_client)
        wait_for(lambda: (entry := ledger.get(job.job_id)) and entry.state is LedgerState.DISPATCHED,
                 message="the consumer loop admitted and dispatched the job")
        redis_client.delete(keys.CELERY_QUEUE)
        # A worker put the job aside for 0 s: the housekeeping loop pushes it back to Celery.
        delay_job(redis_client, job_id=job.job_id, payload=job.encode(), delay=0)
        wait_for(lambda: redis_client.llen(keys.CELERY_QUEUE) == 1 and redis_client.zcard(keys.DELAYED_ZSET) == 0,
                 message="the housekeeping loop released the delayed job")
    finally:
        service.stopping.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert service.code == 0


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def json_lines(path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_podq_log_json_intake_logs_per_job_lines_with_job_id_and_trace_id(redis_client, redis_url, tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("PODQ_")}
    env.update({"PODQ_REDIS_URL": redis_url, "PODQ_METRICS_PORT": "-1", "PODQ_INTAKE_BLOCK_MS": "20"})
    log_path = tmp_path / "intake.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", PODQ, "--log-json", "intake", "--consumer", "json-test"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        key = TaskKey(dag_id="d", task_id="t", run_id="r")
        job = KubernetesJob.new(scheduler_id="s", key=key, traceparent=TRACEPARENT)
        submit(redis_client, job)
        ledger = Ledger(redis_client)
        wait_for(lambda: (entry := ledger.get(job.job_id)) and entry.state is LedgerState.DISPATCHED, timeout=60,
                 message="intake dispatched the job")
        submit(redis_client, job)  # the same job again: intake says it is already dispatched
        refused = KubernetesJob.new(scheduler_id="s", key=TaskKey(dag_id="d", task_id="t", run_id="other"),
                                    namespace="kube-system", traceparent=TRACEPARENT)
        submit(redis_client, refused)

        def line_about(job_id: str, words: str):
            return next((line for line in json_lines(log_path)
                         if line.get("job_id") == job_id and words in line["message"]), None)
        again = wait_for(lambda: line_about(job.job_id, "not dispatched again"), timeout=60,
                         message="intake's JSON line about the job submitted twice")
        rejected = wait_for(lambda: line_about(refused.job_id, "rejected"), timeout=60,
                            message="intake's JSON line about the refused job")
    finally:
        stop_process(process)
    assert again["trace_id"] == TRACE_ID and again["level"] == "INFO"
    assert rejected["trace_id"] == TRACE_ID and rejected["level"] == "WARNING"
    assert "kube-system" in rejected["message"]
    # Every line the service wrote is JSON, and a line about no job carries neither field.
    text = log_path.read_text(encoding="utf-8").splitlines()
    assert text and all(line.startswith("{") for line in text), text[:5]
    assert all(("job_id" in line) == ("trace_id" in line) for line in json_lines(log_path)
               if "not dispatched again" in line["message"] or "rejected" in line["message"])
