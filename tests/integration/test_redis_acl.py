"""`podq redis-acl`: the users it prints load into a real server, and each can do its work and no more.

A Valkey server is started with ``--aclfile`` holding exactly what ``podq redis-acl``
printed (plus a default user for the test's own checks). A producer may only add to
``podq:jobs``/``podq:control``; scheduler A may only read, ack and claim its own
results; intake, the workers and the watcher run a batch of jobs each under its own
user, and the server's ACL log shows no refusal.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import redis

from podq.broker.client.control import revoke
from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.embedded import free_port, server_binary
from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.publish import Publisher
from podq.shared.naming import pod_name_for
from podq.shared.procs import die_with_parent
from podq.shared.records import KubernetesWatch
from podq.shared.settings import load_settings
from podq.shared.states import Source, State
from podq.stack import Stack, StackOptions
from tests.support import wait_for
from tests.support.system import Collector, make_jobs

SCHEDULERS = ("sched-a", "sched-b")
PASSWORDS = {"producer": "producer-pw", "intake": "intake-pw", "worker": "worker-pw", "watcher": "watcher-pw",
             "scheduler:sched-a": "a-pw", "scheduler:sched-b": "b-pw"}
# The test's own administrator: with `default` off, an operator adds one like it to the file.
ADMIN, ADMIN_PASSWORD = "podq-test-admin", "admin-pw"
USERS = {"producer": "podq-producer", "intake": "podq-intake", "worker": "podq-worker", "watcher": "podq-watcher",
         "scheduler:sched-a": "podq-scheduler-sched-a", "scheduler:sched-b": "podq-scheduler-sched-b"}


@pytest.fixture(scope="module")
def acl_port(tmp_path_factory):
    directory = tmp_path_factory.mktemp("acl")
    argv = [sys.executable, "-m", "podq", "redis-acl", *(f"--scheduler={s}" for s in SCHEDULERS),
            *(f"--password={role}={password}" for role, password in PASSWORDS.items())]
    printed = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    aclfile = directory / "users.acl"
    assert printed.startswith("user default off ")   # the output turns the open `default` user off
    aclfile.write_text(printed + f"user {ADMIN} on >{ADMIN_PASSWORD} ~* &* +@all\n")
    port = free_port()
    process = subprocess.Popen([str(server_binary()), "--port", str(port), "--bind", "127.0.0.1",
                                "--aclfile", str(aclfile), "--save", "", "--appendonly", "no", "--dir", str(directory),
                                "--logfile", str(directory / "server.log")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=die_with_parent)
    try:
        admin = redis.Redis(port=port, username=ADMIN, password=ADMIN_PASSWORD, socket_connect_timeout=1)
        wait_for(lambda: _answers(admin), timeout=30, message="the server with podq's ACL file")
        admin.close()
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _answers(client) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def url_for(port: int, role: str) -> str:
    return f"redis://{USERS[role]}:{PASSWORDS[role]}@127.0.0.1:{port}/0"


@pytest.fixture
def admin(acl_port):
    client = connect(f"redis://{ADMIN}:{ADMIN_PASSWORD}@127.0.0.1:{acl_port}/0")
    client.flushall()
    client.acl_log_reset()
    yield client
    client.close()


def refused(call) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_every_role_has_a_user(admin):
    assert set(admin.acl_users()) == {"default", ADMIN, *USERS.values()}


def test_the_default_user_is_off(admin, acl_port):
    assert "off" in admin.acl_getuser("default")["flags"]
    anonymous = redis.Redis(port=acl_port, socket_connect_timeout=5)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_a_producer_adds_jobs_and_control_records_and_nothing_else(admin, acl_port):
    producer = connect(url_for(acl_port, "producer"))
    jobs, _ = make_jobs("sched-a", 2)
    submit_many(producer, jobs)
    revoke(producer, job_id=jobs[0].job_id, scheduler_id="sched-a")
    assert (admin.xlen(keys.JOBS_STREAM), admin.xlen(keys.CONTROL_STREAM)) == (2, 1)
    admin.hset(keys.job_key(jobs[0].job_id), "state", "accepted")
    admin.xadd(keys.results_stream("sched-a"), {"record": b"x"})
    assert refused(lambda: producer.xrange(keys.results_stream("sched-a")))
    assert refused(lambda: producer.xadd(keys.results_stream("sched-a"), {"record": b"x"}))
    assert refused(lambda: producer.hgetall(keys.job_key(jobs[0].job_id)))
    assert refused(lambda: producer.xrange(keys.JOBS_STREAM))
    assert refused(lambda: producer.delete(keys.JOBS_STREAM))
    assert refused(lambda: producer.lpush(keys.CELERY_QUEUE, "x"))
    producer.close()


def result_for(scheduler_id: str, n: int) -> KubernetesWatch:
    jobs, _ = make_jobs(scheduler_id, n + 1)
    job = jobs[n]
    return KubernetesWatch.build(job_id=job.job_id, scheduler_id=scheduler_id, key=job.key, source=Source.WATCHER,
                                 state=State.PENDING, pod_name=pod_name_for(job.job_id, job.key), namespace="default")


def test_a_scheduler_reads_acks_and_claims_only_its_own_results(admin, acl_port):
    publisher = Publisher(admin)
    for scheduler_id in SCHEDULERS:
        publisher.publish([result_for(scheduler_id, n) for n in range(3)])
    a = connect(url_for(acl_port, "scheduler:sched-a"))
    consumer = ResultsConsumer(a, scheduler_id="sched-a", consumer="a-1", reclaim_idle_ms=0)
    read = consumer.read(block_ms=0)
    assert len(read) == 3
    consumer.ack(read)
    assert admin.xpending(keys.results_stream("sched-a"), keys.RESULTS_GROUP)["pending"] == 0
    consumer.reclaim()
    assert refused(lambda: ResultsConsumer(a, scheduler_id="sched-b", consumer="a-1").read(block_ms=0))
    assert refused(lambda: a.xreadgroup(keys.RESULTS_GROUP, "a-1", {keys.results_stream("sched-b"): ">"}))
    assert refused(lambda: a.xrange(keys.results_stream("sched-b")))
    assert refused(lambda: a.xadd(keys.JOBS_STREAM, {"record": b"x"}))
    assert refused(lambda: a.smembers(keys.SCHEDULERS_SET))
    assert refused(lambda: a.hgetall(keys.job_key("any")))
    a.close()


def test_each_service_runs_its_workload_under_its_own_user(admin, acl_port, tmp_path):
    base = f"redis://{ADMIN}:{ADMIN_PASSWORD}@127.0.0.1:{acl_port}/0"   # what podq up checks it can reach
    service_env = {role: {"PODQ_REDIS_URL": url_for(acl_port, role)} for role in ("intake", "worker", "watcher")}
    settings = dataclasses.replace(load_settings({"PODQ_REDIS_URL": base}))
    options = StackOptions(workers=2, worker_concurrency=2, data_dir=str(tmp_path / "stack"),
                           extra_env={"PODQ_WORKER_VISIBILITY_TIMEOUT": "10"}, service_env=service_env)
    with Stack(settings, options) as stack:
        producer = connect(url_for(acl_port, "producer"))
        scheduler = connect(url_for(acl_port, "scheduler:sched-a"), block_ms=200)
        jobs, expected = make_jobs("sched-a", 20, run_seconds=0.1)
        collector = Collector(ResultsConsumer(scheduler, scheduler_id="sched-a", consumer="a-1"))
        submit_many(producer, jobs)
        # No early orphan diagnosis: it reads the queues, which the scheduler's user may not (ACL LOG below).
        collector.until_all_terminal(set(expected), timeout=120, stack=stack, stall=float("inf"))
        assert collector.ends() == expected
        producer.close()
        scheduler.close()
    denials = [(entry.get("username"), entry.get("object"), entry.get("reason")) for entry in admin.acl_log()]
    assert denials == []
