"""One delivery at a time per job, and jobs whose message vanished are pushed again."""
from __future__ import annotations

import base64
import dataclasses
import json

import msgpack

from podq.broker.intake.housekeeping import Housekeeping
from podq.broker.store import keys
from podq.broker.store.ledger import Lease, Ledger
from podq.shared.records import KubernetesJob
from podq.shared.states import LedgerState
from tests.support.workers import NAMESPACE, admit, make_job, make_settings, pod_name
from tests.support import wait_for


def test_a_second_delivery_is_busy_while_the_first_holds_the_lease(redis_client):
    job = make_job(1)
    ledger = Ledger(redis_client)
    ledger.accept_many([(job, pod_name(job))])
    first = ledger.claim_job(job.job_id, Lease(token="a", seconds=30, grace=5))
    second = ledger.claim_job(job.job_id, Lease(token="b", seconds=30, grace=5))
    assert (first.busy, first.deliveries) == (False, 1)
    assert (second.busy, second.deliveries) == (True, 1)
    # The holder itself may claim again (a retry inside its own delivery).
    assert not ledger.claim_job(job.job_id, Lease(token="a", seconds=30, grace=5)).busy


def test_an_expired_lease_lets_the_next_delivery_in(redis_client):
    job = make_job(1)
    ledger = Ledger(redis_client)
    ledger.accept_many([(job, pod_name(job))])
    ledger.claim_job(job.job_id, Lease(token="dead", seconds=0, grace=5))
    claim = ledger.claim_job(job.job_id, Lease(token="next", seconds=30, grace=5))
    assert (claim.busy, claim.deliveries) == (False, 2)


def test_duplicate_messages_make_one_create_and_count_one_delivery(redis_client, redis_url, kubesim, podq_worker):
    settings = make_settings(redis_url, kubesim.kubeconfig)
    admin = kubesim.admin()
    admin.set_latency("create", seconds=0.3)
    job = make_job(1, run_seconds=30)
    with podq_worker(settings, concurrency=4):
        admit(redis_client, [job] * 4, per_message=1)   # the same job in four messages at once
        wait_for(lambda: Ledger(redis_client).get(job.job_id).state is LedgerState.CREATED, message="created")
        wait_for(lambda: redis_client.llen(keys.CELERY_QUEUE) == 0 and redis_client.zcard("unacked_index") == 0,
                 message="every message handled")
    assert admin.create_count(namespace=NAMESPACE, name_prefix=pod_name(job)) == 1
    assert Ledger(redis_client).get(job.job_id).deliveries == 1


def housekeeping_for(redis_client, settings, *, after: float) -> Housekeeping:
    settings = dataclasses.replace(settings, intake=dataclasses.replace(settings.intake, redispatch_after=after))
    return Housekeeping(client=redis_client, settings=settings)


def test_a_job_whose_message_vanished_is_pushed_again_and_created_once(redis_client, redis_url, kubesim, podq_worker):
    settings = make_settings(redis_url, kubesim.kubeconfig)
    admin = kubesim.admin()
    job = make_job(1, run_seconds=30)
    housekeeping = housekeeping_for(redis_client, settings, after=0.5)
    ledger = Ledger(redis_client)
    ledger.accept_many([(job, pod_name(job))])
    ledger.mark_dispatched([job.job_id], orphaned_after=0.5)
    # The Celery message was lost (as when Redis dies between kombu's pop and its unacked write).
    assert redis_client.llen(keys.CELERY_QUEUE) == 0
    with podq_worker(settings):
        wait_for(lambda: housekeeping.redispatch_orphans(force=True) or ledger.get(job.job_id).state is LedgerState.CREATED,
                 message="the orphan pushed again")
        wait_for(lambda: ledger.get(job.job_id).state is LedgerState.CREATED, message="created")
        # Created jobs leave the in-flight set: nothing more to push.
        assert housekeeping.redispatch_orphans(force=True) == 0
    assert admin.create_count(namespace=NAMESPACE, name_prefix=pod_name(job)) == 1
    assert redis_client.zscore(keys.INFLIGHT_ZSET, job.job_id) is None


def test_orphans_wait_while_the_queue_holds_messages_or_a_lease_runs(redis_client, redis_url, kubesim):
    settings = make_settings(redis_url, kubesim.kubeconfig)
    housekeeping = housekeeping_for(redis_client, settings, after=0.0)
    jobs = [make_job(n) for n in range(2)]
    ledger = Ledger(redis_client)
    ledger.accept_many([(job, pod_name(job)) for job in jobs])
    ledger.mark_dispatched([job.job_id for job in jobs], orphaned_after=0.0)
    redis_client.lpush(keys.CELERY_QUEUE, b"another job's message")
    assert housekeeping.redispatch_orphans(force=True) == 0          # the queue may still hold them
    redis_client.delete(keys.CELERY_QUEUE)
    ledger.claim_job(jobs[0].job_id, Lease(token="live", seconds=60, grace=0))
    pushed = housekeeping.redispatch_orphans(force=True)                # only the one nobody holds
    assert pushed == 1
    assert [KubernetesJob.decode(p) for p in _queued_payloads(redis_client)] == [jobs[1]]


def _queued_payloads(client) -> list[bytes]:
    payloads = []
    for raw in client.lrange(keys.CELERY_QUEUE, 0, -1):
        args, _kwargs, _embed = msgpack.unpackb(base64.b64decode(json.loads(raw)["body"]), raw=False)
        payloads.extend(args[0])
    return payloads
