"""Waiting lines and intake's dispatcher against a real Valkey: where jobs wait while the create budget is
full, in what order they leave, and that each leaves once."""
from __future__ import annotations

import dataclasses

import pytest

from podq.broker.client.submit import submit_many
from podq.broker.intake.dispatcher import Dispatcher
from podq.broker.intake.service import Intake
from podq.broker.store import keys
from podq.broker.store.ledger import Ledger
from podq.broker.store.ratelimit import BudgetState, CreateBudget
from podq.broker.store.waiting import WaitingLines
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import IntakeSettings, load_settings
from podq.shared.states import LedgerState
from tests.support.workers import celery_jobs


def make_job(n: int, *, scheduler_id: str = "sched-a", priority: int = 0) -> KubernetesJob:
    key = TaskKey(dag_id="dag", task_id=f"task-{n}", run_id="run-1")
    return KubernetesJob.new(scheduler_id=scheduler_id, key=key, command=["true"], priority=priority)


def accepted(client, jobs):
    Ledger(client).accept_many([(job, f"pod-{job.job_id}") for job in jobs])
    return jobs


def released(client) -> list[KubernetesJob]:
    return [KubernetesJob.decode(payload) for payload in celery_jobs(client)]


@pytest.fixture
def settings():
    return load_settings({}, intake=IntakeSettings(block_ms=10, jobs_per_message=4, dispatch_ahead_min=4,
                                                   scheduler_weights=("heavy=3",)))


def full_budget(client, settings, *, rate: float = 1.0) -> None:
    """A budget of ``rate`` creates/s: the window is the floor (4 jobs)."""
    budget = CreateBudget(client, cluster="default", ceiling=1000.0, start=100.0, burst=1)
    state, _ = budget.read()
    assert budget.write(state, BudgetState(rate=rate, reason="throttled"))


def test_a_line_is_in_priority_order_then_first_come_and_a_job_leaves_it_once(redis_client):
    lines = WaitingLines(redis_client, cluster="default")
    jobs = accepted(redis_client, [make_job(0), make_job(1, priority=5), make_job(2), make_job(3, priority=5),
                                   make_job(4, priority=-1)])
    assert lines.add(jobs) == [True] * 5
    assert lines.add(jobs[:1]) == [False], "a job waits once"
    ledger = Ledger(redis_client)
    assert {ledger.get(job.job_id).state for job in jobs} == {LedgerState.WAITING}
    assert ledger.revoke(jobs[2].job_id)[0], "a waiting job can be revoked"
    records = lines.take({"sched-a": 5}, weights={"sched-a": 2.0}, orphaned_after=30)
    order = [KubernetesJob.decode(record).key.task_id for record in records]
    assert order == ["task-1", "task-3", "task-0", "task-4"], "the revoked job left the line, undispatched"
    assert {ledger.get(job.job_id).state for job in jobs} == {LedgerState.DISPATCHED, LedgerState.REVOKED}
    assert redis_client.zcard(keys.INFLIGHT_ZSET) == 4
    assert not lines.any_waiting(), "an empty line leaves the schedulers"
    assert lines.take({"sched-a": 5}, weights={}, orphaned_after=30) == [], "nothing is dispatched twice"


def test_a_new_line_joins_at_the_lowest_pass_and_passes_grow_by_service_over_weight(redis_client):
    lines = WaitingLines(redis_client, cluster="default")
    lines.add(accepted(redis_client, [make_job(n, scheduler_id="a") for n in range(10)]))
    lines.take({"a": 4}, weights={"a": 2.0}, orphaned_after=30)
    assert lines.read().lines[0].pass_ == pytest.approx(2.0)
    lines.add(accepted(redis_client, [make_job(n, scheduler_id="b") for n in range(3)]))
    read = {line.scheduler: line for line in lines.read().lines}
    assert read["b"].pass_ == pytest.approx(2.0) and (read["a"].waiting, read["b"].waiting) == (6, 3)
    assert lines.read().dispatched == 4


def test_intake_holds_jobs_when_the_budget_is_full_and_the_dispatcher_shares_them(redis_client, settings):
    full_budget(redis_client, settings)
    intake = Intake(client=redis_client, settings=settings, consumer="c1")
    intake.prepare()
    heavy = [make_job(n, scheduler_id="heavy") for n in range(40)]
    light = [make_job(n, scheduler_id="light") for n in range(40)]
    submit_many(redis_client, heavy)
    while intake.step(block_ms=10):
        pass
    submit_many(redis_client, light)
    while intake.step(block_ms=10):
        pass
    # A batch bigger than the window (4 jobs) waits whole; nothing went to the Celery queue.
    assert released(redis_client) == []
    ledger = Ledger(redis_client)
    assert {ledger.get(job.job_id).state for job in heavy + light} == {LedgerState.WAITING}
    dispatcher = intake.dispatchers[None]
    shares = {"heavy": 0, "light": 0}
    for _ in range(10):
        assert dispatcher.step() == 4
        assert dispatcher.step() == 0, "no more room until these are created"
        batch = released(redis_client)
        for job in batch:
            shares[job.scheduler_id] += 1
        # Their creates happen (as a worker's created.lua records them): room for four more.
        redis_client.zrem(keys.INFLIGHT_ZSET, *[job.job_id for job in batch])
        redis_client.delete(keys.CELERY_QUEUE)
    # heavy weighs 3 (PODQ_INTAKE_SCHEDULER_WEIGHTS), light 1: 30 and 10 of 40, whatever came first.
    assert shares == {"heavy": 30, "light": 10}


def test_with_fair_share_off_or_no_budget_every_job_goes_at_once(redis_client, settings):
    full_budget(redis_client, settings)
    for changed in (dataclasses.replace(settings, intake=dataclasses.replace(settings.intake, fair_share=False)),
                    dataclasses.replace(settings, worker=dataclasses.replace(settings.worker, create_rate=0.0))):
        redis_client.delete(keys.CELERY_QUEUE)
        assert not Dispatcher(client=redis_client, settings=changed).enabled
        intake = Intake(client=redis_client, settings=changed, consumer="c1")
        intake.prepare()
        jobs = [make_job(n, scheduler_id=f"s-{changed.intake.fair_share}") for n in range(30)]
        submit_many(redis_client, jobs)
        while intake.step(block_ms=10):
            pass
        assert len(released(redis_client)) == 30


def test_a_higher_priority_job_that_joins_after_the_heads_were_read_is_not_passed_over(redis_client):
    lines = WaitingLines(redis_client, cluster="default")
    lines.add(accepted(redis_client, [make_job(n) for n in range(3)]))
    real_pipeline = redis_client.pipeline

    class JoinAfterRead:
        """A pipeline whose first read of the heads lets a priority-9 job join right after."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def execute(self, *args, **kwargs):
            heads = self.inner.execute(*args, **kwargs)
            if not joined:
                joined.append(True)
                lines.add(accepted(redis_client, [make_job(99, priority=9)]))
            return heads

    joined: list[bool] = []
    redis_client.pipeline = lambda *args, **kwargs: JoinAfterRead(real_pipeline(*args, **kwargs))
    try:
        records = lines.take({"sched-a": 2}, weights={}, orphaned_after=30)
    finally:
        redis_client.pipeline = real_pipeline
    assert joined, "the job joined between the read and the take"
    assert [KubernetesJob.decode(record).key.task_id for record in records] == ["task-99", "task-0"]
