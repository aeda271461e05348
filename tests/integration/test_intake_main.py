"""``podq intake`` as its entry point runs it: the consumer loop and the housekeeping loop, stoppable."""
from __future__ import annotations

import threading

from podq.broker.client.submit import submit
from podq.broker.intake.main import IntakeService, main
from podq.broker.store import keys
from podq.broker.store.delayed import delay_job
from podq.broker.store.ledger import Ledger
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import IntakeSettings, load_settings
from podq.shared.states import LedgerState
from tests.support import wait_for


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
