"""Worker liveness: a dead worker's messages come back within 15 s; a paused one creates nothing twice.

Real ``podq worker`` processes on the default visibility timeout (300 s), real
Valkey, kubesim over HTTP. kubesim answers creates with 503 while a test needs a
worker to hold its job (the worker keeps retrying inside its delivery).
"""
from __future__ import annotations

import signal
import subprocess
import time

from podq.broker.store.ledger import Lease, Ledger
from podq.broker.store.liveness import Liveness, live_workers
from podq.broker.store import keys
from podq.shared.states import LedgerState
from tests.support import core_v1, stop_process, wait_for
from tests.support.workers import NAMESPACE, admit, make_job, pod_name, start_worker_process, worker_env

# The bound: a dead worker's messages are back in the queue within this long of its death.
RETURN_BOUND = 15.0


def stop(process: subprocess.Popen) -> None:
    """Resume ``process`` if it was paused (SIGSTOP), then stop it."""
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
    stop_process(process)


def env_for(redis_url: str, kubeconfig: str, **extra: str) -> dict[str, str]:
    """Default visibility timeout: only the liveness record can bring messages back in seconds."""
    return worker_env(redis_url, kubeconfig, PODQ_WORKER_VISIBILITY_TIMEOUT="300", PODQ_WORKER_CONCURRENCY="2",
                      PODQ_INTAKE_JOBS_PER_MESSAGE="4", **extra)


def held_tags(client, worker_name: str) -> list[str]:
    """The delivery tags the live worker named ``worker_name`` reports holding."""
    for worker in live_workers(client):
        if worker.startswith(f"{worker_name}@test/"):
            tags = client.hget(keys.WORKER_DELIVERIES, worker)
            return tags.decode().split() if tags else []
    return []


def wait_live(client, worker_name: str) -> None:
    wait_for(lambda: any(w.startswith(f"{worker_name}@test/") for w in live_workers(client)), timeout=60,
             message=f"{worker_name}'s liveness record")


def test_a_sigkilled_workers_messages_return_within_15_s(redis_client, redis_url, kubesim, tmp_path):
    admin = kubesim.admin()
    fault = admin.add_fault(action="503", verb="create")   # the victim keeps retrying: it holds its messages
    jobs = [make_job(n) for n in range(8)]
    env = env_for(redis_url, kubesim.kubeconfig)
    victim = start_worker_process(env, "victim", tmp_path)
    survivor = None
    try:
        admit(redis_client, jobs, per_message=4)
        wait_for(lambda: len(held_tags(redis_client, "victim")) == 2, timeout=60,
                 message="the victim to report holding both messages")
        tags = held_tags(redis_client, "victim")
        survivor = start_worker_process(env, "survivor", tmp_path)
        wait_live(redis_client, "survivor")
        assert redis_client.llen(keys.CELERY_QUEUE) == 0
        assert all(redis_client.hexists(keys.KOMBU_UNACKED, tag) for tag in tags)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed = time.monotonic()
        ledger = Ledger(redis_client)
        # Back in the queue and taken by the survivor: every job claimed a second time.
        wait_for(lambda: all(ledger.get(job.job_id).deliveries >= 2 for job in jobs), timeout=60,
                 message="the survivor to claim the victim's jobs")
        returned = time.monotonic() - killed
        print(f"the dead worker's jobs were claimed again {returned:.1f} s after its SIGKILL")
        assert returned <= RETURN_BOUND
        admin.remove_fault(fault)
        wait_for(lambda: all(ledger.get(job.job_id).state is LedgerState.CREATED for job in jobs), timeout=60,
                 message="every job created")
        assert survivor.poll() is None
    finally:
        stop(victim)
        if survivor is not None:
            stop(survivor)
    names = [entry["name"] for entry in admin.creates(namespace=NAMESPACE)]
    assert sorted(names) == sorted(pod_name(job) for job in jobs)
    # The restored messages were acked by the survivor: nothing is left for the visibility timeout.
    assert redis_client.hlen(keys.KOMBU_UNACKED) == 0


def test_a_paused_worker_creates_no_second_pod_after_its_job_was_taken_over(redis_client, redis_url, kubesim,
                                                                            tmp_path):
    """SIGSTOP a worker mid-retry; another takes the job over, creates it, the pod is deleted; SIGCONT.

    Without the claim check the paused worker's next attempt would create the pod a second time
    (its name is free again, so no 409 would stop it).
    """
    admin = kubesim.admin()
    job = make_job(1)
    fault = admin.add_fault(action="503", verb="create", name_prefix=pod_name(job))
    env = env_for(redis_url, kubesim.kubeconfig)
    paused = start_worker_process(env, "paused", tmp_path)
    other = None
    ledger = Ledger(redis_client)
    try:
        admit(redis_client, [job], per_message=1)
        wait_for(lambda: admin.faults()[0]["fired"] >= 1, timeout=60, message="the first create attempt")
        other = start_worker_process(env, "other", tmp_path)
        wait_live(redis_client, "other")
        paused.send_signal(signal.SIGSTOP)
        wait_for(lambda: ledger.get(job.job_id).deliveries >= 2, timeout=60,
                 message="the other worker to take the paused one's job over")
        admin.remove_fault(fault)
        wait_for(lambda: ledger.get(job.job_id).state is LedgerState.CREATED, timeout=30, message="created")
        with core_v1(kubesim.kubeconfig) as api:
            api.delete_namespaced_pod(pod_name(job), NAMESPACE, grace_period_seconds=0)
        wait_for(lambda: _gone(kubesim.kubeconfig, pod_name(job)), timeout=30, message="the pod deleted")
        paused.send_signal(signal.SIGCONT)
        log = tmp_path / "paused.log"
        # Either it stands down (the log says so) or it creates the pod again (the count below fails).
        wait_for(lambda: "claim was taken over" in log.read_text(errors="replace")
                 or admin.create_count(namespace=NAMESPACE, name_prefix=pod_name(job)) > 1, timeout=60,
                 message="the resumed worker to find its claim taken over")
        assert paused.poll() is None and other.poll() is None
    finally:
        stop(paused)
        if other is not None:
            stop(other)
    assert admin.create_count(namespace=NAMESPACE, name_prefix=pod_name(job)) == 1


def _gone(kubeconfig: str, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException
    with core_v1(kubeconfig) as api:
        try:
            api.read_namespaced_pod(name, NAMESPACE)
        except ApiException as exc:
            return exc.status == 404
    return False


def test_a_lease_backed_by_a_lapsed_record_is_void_and_a_live_one_holds(redis_client):
    job = make_job(1)
    ledger = Ledger(redis_client)
    ledger.accept_many([(job, pod_name(job))])
    alive = Liveness(redis_client, worker="alive", ttl=30)
    assert alive.beat([]) is True            # a first beat: the record did not exist before
    assert alive.beat([]) is False
    ledger.claim_job(job.job_id, Lease(token="a", seconds=60, grace=5, worker="alive"))
    assert ledger.claim_job(job.job_id, Lease(token="b", seconds=60, grace=5, worker="")).busy
    # The holder's record lapses (here: removed, as after its TTL): its lease no longer counts.
    alive.leave()
    claim = ledger.claim_job(job.job_id, Lease(token="b", seconds=60, grace=5, worker=""))
    assert (claim.busy, claim.deliveries) == (False, 2)
    # The first delivery, back from a pause, finds its claim gone; the new holder keeps it.
    assert alive.hold(job.job_id, "a") is False
    assert Liveness(redis_client, worker="other", ttl=30).hold(job.job_id, "b") is True


def test_restore_takes_only_messages_no_live_worker_holds(redis_client):
    """Messages held by a live worker stay; a lapsed worker's and an unreported one's go back as they were."""
    now = time.time()
    message = '{"body": "x", "properties": {"delivery_tag": "%s"}}'
    for tag in ("live-tag", "dead-tag", "fresh-tag", "other-queue"):
        routing = "elsewhere" if tag == "other-queue" else keys.CELERY_QUEUE
        redis_client.hset(keys.KOMBU_UNACKED, tag, f'[{message % tag}, "", "{routing}"]')
        redis_client.zadd(keys.KOMBU_UNACKED_INDEX, {tag: now - (0 if tag == "fresh-tag" else 60)})
    live = Liveness(redis_client, worker="live", ttl=10)
    live.beat(["live-tag"])
    dead = Liveness(redis_client, worker="dead", ttl=10)
    dead.beat(["dead-tag"])
    redis_client.zadd(keys.WORKERS_ZSET, {"dead": now - 1})   # its record lapsed a second ago
    assert live.restore_dead() == 1
    assert redis_client.lrange(keys.CELERY_QUEUE, 0, -1) == [(message % "dead-tag").encode()]
    assert sorted(redis_client.hkeys(keys.KOMBU_UNACKED)) == [b"fresh-tag", b"live-tag", b"other-queue"]
    assert sorted(redis_client.zrange(keys.KOMBU_UNACKED_INDEX, 0, -1)) == [b"fresh-tag", b"live-tag",
                                                                            b"other-queue"]


def test_a_reconnected_worker_gives_back_the_deliveries_celery_dropped(redis_client):
    """On a broker reconnect Celery forgets the messages it had reserved but not started, without a
    signal: the heartbeat stops reporting them and puts them back on the queue at once (not after
    the 300 s visibility timeout); a running one stays held, a lost one is skipped."""
    from types import SimpleNamespace

    from celery import Celery, signals

    from podq.workers.liveness import Heartbeat

    message = '{"body": "x", "properties": {"delivery_tag": "%s"}}'
    for tag in ("running-tag", "reserved-tag"):
        redis_client.hset(keys.KOMBU_UNACKED, tag, f'[{message % tag}, "", "{keys.CELERY_QUEUE}"]')
        redis_client.zadd(keys.KOMBU_UNACKED_INDEX, {tag: time.time()})
    app = Celery("liveness-test", set_as_current=False)
    heartbeat = Heartbeat(Liveness(redis_client, worker="w", ttl=10))
    heartbeat.attach(app)
    sender = type("Task", (), {"app": app})()   # what task_received is sent by: the consumer, with its app
    for task_id, tag in (("running", "running-tag"), ("reserved", "reserved-tag"), ("lost", "lost-tag")):
        signals.task_received.send(sender=sender, request=SimpleNamespace(id=task_id,
                                                                           message=SimpleNamespace(delivery_tag=tag)))
    assert sorted(heartbeat.held()) == ["lost-tag", "reserved-tag", "running-tag"]
    heartbeat.connected({"running"})
    assert heartbeat.held() == ["running-tag"]
    assert redis_client.lrange(keys.CELERY_QUEUE, 0, -1) == [(message % "reserved-tag").encode()]
    assert redis_client.hkeys(keys.KOMBU_UNACKED) == [b"running-tag"]
    assert redis_client.zrange(keys.KOMBU_UNACKED_INDEX, 0, -1) == [b"running-tag"]
    # The step that calls it on every (re)connect is on the consumer's blueprint.
    assert any(step.__name__ == "Connected" for step in app.steps["consumer"])
