"""Celery's own tools work unchanged against podq's workers: Flower and `celery inspect`.

Flower (the pip-installed program, its own process) is started against the stack's embedded
Redis during a run; its HTTP API lists podq's two workers and the ``podq.create_pod`` tasks they
ran. `celery inspect` pings the workers and reads the queue they consume.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from podq.broker.client.submit import submit_many
from podq.broker.queue.envelopes import CREATE_TASK
from podq.broker.store import keys
from podq.shared.records import KubernetesJob, TaskKey
from podq.stack import free_port
from tests.support import stop_process, wait_for

SCHEDULER = "flowered"
WORKERS = {"worker-1@podq", "worker-2@podq"}


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _celery(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "celery", "--broker", stack.redis_url, *args],
                          capture_output=True, text=True, timeout=120, env=_env())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODQ_")}
    env["FLOWER_UNAUTHENTICATED_API"] = "true"  # Flower 2 serves its API only with auth or this
    return env


def test_flower_lists_podqs_workers_and_tasks(stack, stack_redis, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "flower.log", "wb") as log:
        flower = subprocess.Popen([sys.executable, "-m", "celery", "--broker", stack.redis_url, "flower",
                                   "--address=127.0.0.1", f"--port={port}"],
                                  stdout=log, stderr=subprocess.STDOUT, env=_env())
    try:
        workers = wait_for(lambda: (found := _get(f"{base}/api/workers?refresh=1")) and WORKERS <= set(found)
                           and found, timeout=90, interval=0.5, message="Flower listing both workers")
        assert all(keys.CELERY_QUEUE in {queue["name"] for queue in workers[name]["active_queues"]}
                   for name in WORKERS)
        attempt = iter(range(1000))

        # Flower turns the workers' task events on (they are off by default) a few seconds after it
        # starts; each poll submits fresh jobs, and those run after that show up as tasks.
        def flower_saw_tasks():
            n = next(attempt)
            submit_many(stack_redis, [KubernetesJob.new(scheduler_id=SCHEDULER, command=["true"],
                                                        key=TaskKey(dag_id="f", task_id=f"t{n}-{i}", run_id="r"))
                                      for i in range(4)])
            tasks = _get(f"{base}/api/tasks") or {}
            done = [task for task in tasks.values() if task.get("name") == CREATE_TASK and task.get("state") == "SUCCESS"]
            return done and tasks
        tasks = wait_for(flower_saw_tasks, timeout=90, interval=1.0, message="Flower seeing podq.create_pod tasks")
        assert {task["worker"] for task in tasks.values() if task.get("name") == CREATE_TASK} <= WORKERS
    finally:
        stop_process(flower)


def test_celery_inspect_pings_the_workers_and_reads_their_queue(stack):
    ping = _celery(stack, "inspect", "ping", "--timeout", "5")
    assert ping.returncode == 0, ping.stderr
    assert all(f"{name}: OK" in ping.stdout for name in WORKERS), ping.stdout
    queues = _celery(stack, "inspect", "active_queues", "--json", "--timeout", "5")
    assert queues.returncode == 0, queues.stderr
    replies = json.loads(queues.stdout)
    assert set(replies) == WORKERS
    assert all(keys.CELERY_QUEUE in {queue["name"] for queue in reply} for reply in replies.values())
