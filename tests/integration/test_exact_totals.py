"""The Redis totals behind `podq status` count each fact once, in the script that records it, so no
crash can lose or repeat a count: a pod whose worker died before its created step is counted once
(whether its terminal result or the redelivery's created step reaches the ledger first), a redelivery
counts nothing, a pod created after its job ended counts once.

The first tests drive the ledger scripts directly, in every order; the last two SIGKILL a real
``podq worker`` process holding a create that kubesim stored but never answered (the issue's case)."""
from __future__ import annotations

import signal

import pytest

from podq.broker.store import counters
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import Item, Publisher
from podq.shared.records import KubernetesWatch
from podq.shared.states import LedgerState, Source, State
from podq.watcher.daemon import Watcher
from tests.support import stop_process, wait_for
from tests.support.watcher import settings_for
from tests.support.workers import NAMESPACE, admit, make_job, pod_name, start_worker_process, worker_env


def created_total(client) -> int:
    return counters.totals(client).get(counters.CREATED, 0)


def ended(job, state: State = State.SUCCEEDED) -> KubernetesWatch:
    return KubernetesWatch.build(job_id=job.job_id, scheduler_id=job.scheduler_id, key=job.key, state=state,
                                 source=Source.WATCHER, pod_name=pod_name(job), namespace=NAMESPACE)


def test_accepted_and_dispatched_count_each_job_once(redis_client):
    jobs = [make_job(n) for n in range(3)]
    admit(redis_client, jobs)
    ledger = Ledger(redis_client)
    # A second intake, after a crash, reads the same entries again: nothing moves, nothing counts.
    assert ledger.accept_many([(job, pod_name(job)) for job in jobs]) == ["dispatched"] * 3
    ledger.mark_dispatched([job.job_id for job in jobs])
    totals = counters.totals(redis_client)
    assert (totals[counters.ACCEPTED], totals[counters.DISPATCHED]) == (3, 3)


@pytest.mark.parametrize("first", ["created", "terminal"])
def test_a_pod_counts_once_whichever_of_its_created_step_and_terminal_result_comes_first(redis_client, first):
    job = make_job(1)
    admit(redis_client, [job])
    ledger, publisher = Ledger(redis_client), Publisher(redis_client)

    def created() -> None:
        ledger.mark_created_many([(job.job_id, "uid-1")])

    def terminal() -> None:
        publisher.publish_items([Item(result=ended(job), pod_uid="uid-1")])

    steps = [created, terminal] if first == "created" else [terminal, created]
    for step in steps:
        step()
        assert created_total(redis_client) == 1
    created()                                      # a redelivery finds its own pod (409, read back)
    terminal()                                     # a second terminal result is dropped by the latch
    assert created_total(redis_client) == 1
    assert counters.totals(redis_client)[counters.ended(State.SUCCEEDED)] == 1


def test_a_terminal_result_about_no_pod_counts_no_pod(redis_client):
    job = make_job(1)
    admit(redis_client, [job])
    Publisher(redis_client).publish_items([Item(result=ended(job, State.LOST))])
    totals = counters.totals(redis_client)
    assert created_total(redis_client) == 0 and totals[counters.ended(State.LOST)] == 1


def test_a_pod_created_after_its_job_ended_counts_once(redis_client):
    job = make_job(1)
    admit(redis_client, [job])
    ledger = Ledger(redis_client)
    Publisher(redis_client).publish_items([Item(result=ended(job, State.LOST))])   # lost before any pod
    assert ledger.mark_created_many([(job.job_id, "late")]) == [(False, LedgerState.TERMINAL.value)]
    assert ledger.mark_created_many([(job.job_id, "late")]) == [(False, LedgerState.TERMINAL.value)]
    assert created_total(redis_client) == 1


def _kill_a_worker_holding_a_stored_create(redis_client, redis_url, kubesim, tmp_path, *, run_seconds: float):
    """A worker's create is stored by kubesim and never answered; the worker is SIGKILLed; another worker
    takes the message over. Returns the job, once the ledger shows it settled."""
    admin = kubesim.admin()
    job = make_job(1, run_seconds=run_seconds)
    admin.hang_creates(count=1, name_prefix=pod_name(job))
    # The hung create holds the victim until it is killed (no request timeout ends it first).
    env = worker_env(redis_url, kubesim.kubeconfig, PODQ_WORKER_VISIBILITY_TIMEOUT="300", PODQ_KUBE_REQUEST_TIMEOUT="300")
    victim = start_worker_process(env, "victim", tmp_path)
    survivor = None
    settings = settings_for(redis_url, kubesim.kubeconfig)
    watcher = Watcher(settings, namespaces=[NAMESPACE], instance="w", health_file=str(tmp_path / "health.json"))
    watcher.start()
    try:
        admit(redis_client, [job], per_message=1)
        wait_for(lambda: admin.create_count(namespace=NAMESPACE, name_prefix=pod_name(job)) == 1, timeout=60,
                 message="kubesim to store the hung create")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        survivor = start_worker_process(env, "survivor", tmp_path)
        ledger = Ledger(redis_client)
        wait_for(lambda: ledger.get(job.job_id).deliveries >= 2 or ledger.get(job.job_id).terminal_state,
                 timeout=90, message="the job taken over or ended")
        wait_for(lambda: ledger.get(job.job_id).state in (LedgerState.CREATED, LedgerState.TERMINAL)
                 and (redis_client.llen("podq.pods") == 0), timeout=90, message="the job settled")
    finally:
        stop_process(victim)
        if survivor is not None:
            stop_process(survivor)
        watcher.close()
    assert admin.create_count(namespace=NAMESPACE) == 1
    return job


def test_a_pod_whose_worker_died_and_which_ended_first_is_counted(redis_client, redis_url, kubesim, tmp_path):
    """The issue's case: the pod ends before the redelivery; its terminal result records and counts it."""
    job = _kill_a_worker_holding_a_stored_create(redis_client, redis_url, kubesim, tmp_path, run_seconds=0.05)
    wait_for(lambda: Ledger(redis_client).get(job.job_id).terminal_state, timeout=60, message="its terminal result")
    assert created_total(redis_client) == 1


def test_a_pod_whose_worker_died_and_which_runs_on_is_counted_by_the_redelivery(redis_client, redis_url, kubesim,
                                                                               tmp_path):
    job = _kill_a_worker_holding_a_stored_create(redis_client, redis_url, kubesim, tmp_path, run_seconds=120)
    wait_for(lambda: Ledger(redis_client).get(job.job_id).state is LedgerState.CREATED, timeout=60,
             message="the redelivery's created step")
    assert created_total(redis_client) == 1
