"""broker/store against a real server: scripts that name every key, and the paths where data moves
between the Python read and the script call (an adoption meanwhile, a job accepted meanwhile)."""
from __future__ import annotations

import pytest

from podq.broker.store import adoption, keys, streams
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import Item, Publisher
from podq.broker.store.scripts import scripts_for
from podq.shared.errors import DecodeError
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.states import LedgerState, Source, State


def make_job(n: int, scheduler_id: str = "old") -> KubernetesJob:
    return KubernetesJob.new(scheduler_id=scheduler_id, key=TaskKey(dag_id="d", task_id=f"t{n}", run_id="r"))


def accept(client, *jobs: KubernetesJob) -> None:
    Ledger(client).accept_many([(job, pod_name_for(job.job_id, job.key)) for job in jobs])


def result(job: KubernetesJob, state: State, scheduler_id: str | None = None) -> KubernetesWatch:
    return KubernetesWatch.build(job_id=job.job_id, scheduler_id=scheduler_id or job.scheduler_id, key=job.key,
                                 source=Source.WATCHER, state=state)


def stream_states(client, scheduler_id: str) -> list[str]:
    return [KubernetesWatch.decode(streams.record_of(fields)).state.value
            for _id, fields in client.xrange(keys.results_stream(scheduler_id))]


def test_scripts_are_registered_once_per_client(redis_client):
    assert scripts_for(redis_client) is scripts_for(redis_client)
    assert scripts_for(redis_client).publish.sha == Publisher(redis_client)._script.sha


def test_a_result_built_before_an_adoption_reaches_the_new_owner(redis_client):
    job = make_job(1)
    accept(redis_client, job)
    adoption.adopt_step(redis_client, old="old", new="new")
    # The watcher still believes the pod belongs to "old" (its annotation is patched later).
    entry_id = Publisher(redis_client).publish([result(job, State.SUCCEEDED, scheduler_id="old")])[0]
    assert entry_id
    assert stream_states(redis_client, "new") == [State.SUCCEEDED.value]
    assert stream_states(redis_client, "old") == []
    # The terminal result took the job out of its owner's set, the one it moved to.
    assert not redis_client.sismember(keys.scheduler_jobs_key("new"), job.job_id)


def test_the_publish_script_writes_nothing_when_an_owner_moved(redis_client):
    job = make_job(2)
    accept(redis_client, job)
    redis_client.hset(keys.job_key(job.job_id), "scheduler_id", "elsewhere")
    watch = result(job, State.RUNNING)
    reply = scripts_for(redis_client).publish(
        keys=[keys.INFLIGHT_ZSET, keys.SCHEDULERS_SET, keys.METRICS_KEY, keys.results_stream("old"),
              keys.scheduler_jobs_key("old"), keys.job_key(job.job_id)],
        args=["0", "", "", "", 0, keys.RESULTS_GROUP, 1, "old", 1, job.job_id, "running", 1, watch.encode(), "", "",
              ""])
    assert reply == [b"MOVED", job.job_id.encode(), b"elsewhere"]
    assert not redis_client.hexists(keys.job_key(job.job_id), "published_running")
    assert not redis_client.exists(keys.results_stream("elsewhere"))


def test_adoption_refuses_when_a_job_joined_after_the_read(redis_client):
    first, late = make_job(3), make_job(4)
    accept(redis_client, first, late)
    reply = scripts_for(redis_client).adopt(
        keys=[keys.scheduler_jobs_key("old"), keys.scheduler_jobs_key("new"), keys.results_stream("old"),
              keys.results_stream("new"), keys.adopt_pending_key("old", "new"), keys.SCHEDULERS_SET,
              keys.job_key(first.job_id)],
        args=["old", "new", "0", keys.RESULTS_GROUP, first.job_id])
    assert reply == [b"RETRY"]
    assert Ledger(redis_client).get(first.job_id).scheduler_id == "old"
    # Through adopt_step (which reads the set first) both move.
    step = adoption.adopt_step(redis_client, old="old", new="new")
    assert sorted(step.live_jobs) == sorted([first.job_id, late.job_id])
    assert {entry.scheduler_id for entry in Ledger(redis_client).entries([first.job_id, late.job_id]).values()} \
        == {"new"}


def test_orphan_candidates_that_moved_on_are_left_alone(redis_client):
    waiting, created = make_job(5), make_job(6)
    accept(redis_client, waiting, created)
    ledger = Ledger(redis_client)
    ledger.mark_dispatched([waiting.job_id, created.job_id], orphaned_after=0)
    ledger.mark_created(created.job_id, uid="u")  # leaves the in-flight set
    assert [KubernetesJob.decode(record) for record in ledger.orphans(limit=10, again_after=60)] == [waiting]
    assert ledger.orphans(limit=10, again_after=60) == []  # not again before again_after


def test_results_group_is_created_once_and_added_to_a_stream_without_one(redis_client):
    streams.ensure_results_group(redis_client, "s1")
    streams.ensure_results_group(redis_client, "s1")
    assert [group["name"] for group in redis_client.xinfo_groups(keys.results_stream("s1"))] == [b"scheduler"]
    redis_client.xadd(keys.results_stream("s2"), {"record": b"x"})  # published before any consumer
    streams.ensure_results_group(redis_client, "s2")
    (group,) = redis_client.xinfo_groups(keys.results_stream("s2"))
    assert group["last-delivered-id"] == b"0-0"
    assert redis_client.smembers(keys.SCHEDULERS_SET) == {b"s1", b"s2"}


def test_one_ledger_decoder_for_whole_entries_and_summaries(redis_client):
    job = make_job(7)
    accept(redis_client, job)
    ledger = Ledger(redis_client)
    whole, summary = ledger.get(job.job_id), ledger.entries([job.job_id])[job.job_id]
    assert whole.job == job and whole.state is LedgerState.ACCEPTED
    assert summary.job is None and (summary.state, summary.scheduler_id, summary.pod_name) == \
        (whole.state, whole.scheduler_id, whole.pod_name)
    redis_client.hset(keys.job_key(job.job_id), "state", "paused")
    with pytest.raises(DecodeError, match=rf"ledger {job.job_id}\.state: 'paused'"):
        ledger.get(job.job_id)
    assert ledger.entries([job.job_id]) == {}   # a pass over many leaves the damaged one out



def test_one_batch_keeps_the_rules_for_several_results_of_one_job(redis_client):
    job = make_job(8)
    accept(redis_client, job)
    entries = Publisher(redis_client).publish([result(job, State.RUNNING), result(job, State.FAILED),
                                               result(job, State.SUCCEEDED), result(job, State.PENDING)])
    assert [bool(entry) for entry in entries] == [True, True, False, False]
    assert stream_states(redis_client, "old") == [State.RUNNING.value, State.FAILED.value]
    assert Ledger(redis_client).get(job.job_id).terminal_state == State.FAILED.value


def test_a_publish_call_tells_each_published_jobs_submission_time_from_its_ledger(redis_client):
    timed, older, unknown = make_job(40), make_job(41), make_job(42)
    accept(redis_client, timed, older)
    assert float(redis_client.hget(keys.job_key(timed.job_id), "submitted_at")) == timed.submitted_at
    redis_client.hdel(keys.job_key(older.job_id), "submitted_at")  # recorded before the field existed
    publisher = Publisher(redis_client)
    done = publisher.publish_items([Item(result=result(job, State.RUNNING)) for job in (timed, older, unknown)])
    assert all(done.entries)
    assert done.submitted_at == {timed.job_id: timed.submitted_at}
    # A result the rules drop (running again) publishes nothing and tells no time.
    again = publisher.publish_items([Item(result=result(timed, State.RUNNING))])
    assert again.entries == [""] and again.submitted_at == {}
