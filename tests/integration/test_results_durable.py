"""Results streams as durable queues, against a real Valkey server."""
from __future__ import annotations

import msgpack

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.intake.service import Intake
from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.publish import Publisher
from podq.shared.naming import derive_job_id
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import IntakeSettings, ResultsSettings, load_settings
from podq.shared.states import Source, State
from tests.support import wait_for


def result(n: int, *, scheduler_id: str = "sched-a", state: State = State.SUCCEEDED) -> KubernetesWatch:
    key = TaskKey(dag_id="dag", task_id=f"task-{n}", run_id="run-1")
    return KubernetesWatch.build(job_id=derive_job_id(scheduler_id, key), scheduler_id=scheduler_id, key=key,
                                 source=Source.WATCHER, state=state, pod_name=f"pod-{n}", namespace="default")


def publish(client, count: int, **fields) -> list[KubernetesWatch]:
    results = [result(n, **fields) for n in range(count)]
    assert all(Publisher(client).publish(results))
    return results


def consumer(client, name: str, *, scheduler_id: str = "sched-a", idle_ms: int = 60_000,
             max_deliveries: int = 5, batch_size: int = 100) -> ResultsConsumer:
    return ResultsConsumer(client, scheduler_id=scheduler_id, consumer=name, block_ms=10,
                           reclaim_idle_ms=idle_ms, max_deliveries=max_deliveries, batch_size=batch_size)


def test_group_exists_from_id_0_before_any_result(redis_client):
    published = publish(redis_client, 3)  # nobody consuming yet: the script created the group
    groups = redis_client.xinfo_groups(keys.results_stream("sched-a"))
    assert [(g["name"], g["last-delivered-id"]) for g in groups] == [(b"scheduler", b"0-0")]
    got = consumer(redis_client, "late").read()
    assert [r.event_id for r in got] == [w.event_id for w in published]


def test_consumer_killed_after_reading_a_batch_loses_nothing(redis_client):
    published = publish(redis_client, 20)
    doomed = consumer(redis_client, "c1", batch_size=8)
    taken = doomed.read()
    assert len(taken) == 8
    del doomed  # killed: never acks
    survivor = consumer(redis_client, "c2", idle_ms=100)
    seen: dict[str, str] = {}

    def drain():
        batch = survivor.read(block_ms=10)
        seen.update((r.event_id, r.entry_id) for r in batch)
        survivor.ack(batch)
        return len(seen) == 20

    wait_for(drain, timeout=10, message="the survivor to reclaim the dead consumer's batch")
    assert set(seen) == {w.event_id for w in published}
    assert redis_client.xpending(keys.results_stream("sched-a"), keys.RESULTS_GROUP)["pending"] == 0


def test_restarted_consumer_reads_its_own_pending_entries_first(redis_client):
    publish(redis_client, 5)
    first = consumer(redis_client, "stable").read(count=3)
    restarted = consumer(redis_client, "stable")
    again = restarted.read()
    assert [r.entry_id for r in again] == [r.entry_id for r in first]
    restarted.ack(again)
    rest = restarted.read()
    assert len(rest) == 2


def test_poison_entry_ends_in_the_dead_stream_after_n_deliveries(redis_client):
    publish(redis_client, 1)
    deliveries = 0
    # A handler that crashes on the entry every time: read, never ack, restart, again.
    for attempt in range(10):
        batch = consumer(redis_client, "crashy", max_deliveries=3).read(block_ms=10)
        if not batch:
            break
        deliveries += 1
    assert deliveries == 3
    dead = redis_client.xrange(keys.results_dead_stream("sched-a"))
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"reason"] == b"delivered 4 times to group scheduler without an ack (limit 3)"
    assert KubernetesWatch.decode(fields[b"record"]).state is State.SUCCEEDED
    assert redis_client.xpending(keys.results_stream("sched-a"), keys.RESULTS_GROUP)["pending"] == 0


def test_poison_entry_passed_between_consumers_by_reclaim_goes_dead(redis_client):
    publish(redis_client, 1)
    a = consumer(redis_client, "a", idle_ms=1, max_deliveries=2)
    b = consumer(redis_client, "b", idle_ms=1, max_deliveries=2)
    assert len(a.read()) == 1
    wait_for(lambda: b.reclaim() or redis_client.xlen(keys.results_dead_stream("sched-a")),
             message="b to reclaim the entry")
    wait_for(lambda: a.reclaim() or redis_client.xlen(keys.results_dead_stream("sched-a")),
             message="the entry to go dead")
    [(_id, fields)] = redis_client.xrange(keys.results_dead_stream("sched-a"))
    # Read by a, claimed by b, claimed by a: each XAUTOCLAIM counted as a delivery.
    assert fields[b"reason"] == b"delivered 3 times to group scheduler without an ack (limit 2)"


def test_unreadable_result_goes_to_the_dead_stream_and_is_acked(redis_client):
    stream = keys.results_stream("sched-a")
    redis_client.xgroup_create(stream, keys.RESULTS_GROUP, id="0", mkstream=True)
    redis_client.xadd(stream, {"record": msgpack.packb({"schema": "1.0", "kind": "result"})})
    publish(redis_client, 1)
    got = consumer(redis_client, "c").read()
    assert len(got) == 1
    dead = redis_client.xrange(keys.results_dead_stream("sched-a"))
    assert dead[0][1][b"reason"] == b"result.event_id: required field is missing"


def test_duplicate_event_ids_are_dropped_but_an_unacked_result_comes_back(redis_client):
    [original] = publish(redis_client, 1)
    stream = keys.results_stream("sched-a")
    redis_client.xadd(stream, {"record": original.encode()})  # e.g. a watcher replaying after a crash
    c = consumer(redis_client, "c", idle_ms=1)
    first = c.read()
    assert [r.event_id for r in first] == [original.event_id]
    # Not acked yet: the same entry, reclaimed, is handed out again rather than dropped.
    again = wait_for(lambda: c.reclaim(), message="the unacked entry to come back")
    assert [r.entry_id for r in again] == [first[0].entry_id]
    c.ack(again)
    assert c.read() == []
    assert redis_client.xpending(stream, keys.RESULTS_GROUP)["pending"] == 0


def test_two_schedulers_sharing_a_deployment_each_see_only_their_own(redis_client):
    mine = publish(redis_client, 4, scheduler_id="alpha")
    theirs = publish(redis_client, 3, scheduler_id="beta")
    alpha = consumer(redis_client, "one", scheduler_id="alpha").read()
    beta = consumer(redis_client, "one", scheduler_id="beta").read()
    assert {r.job_id for r in alpha} == {w.job_id for w in mine}
    assert {r.job_id for r in beta} == {w.job_id for w in theirs}
    assert not {r.job_id for r in alpha} & {r.job_id for r in beta}


def test_from_settings_uses_the_results_section(redis_client):
    settings = ResultsSettings(batch_size=7, block_ms=5, reclaim_idle_ms=123, max_deliveries=9)
    c = ResultsConsumer.from_settings(redis_client, settings, scheduler_id="s", consumer="x")
    assert (c.batch_size, c.block_ms, c.redelivery.idle_ms, c.redelivery.max_deliveries) == (7, 5, 123, 9)


def test_intake_reclaims_entries_a_dead_intake_left_behind(redis_url):
    client = connect(redis_url)
    settings = load_settings({}, intake=IntakeSettings(block_ms=10),
                             results=ResultsSettings(reclaim_idle_ms=50))
    jobs = [KubernetesJob.new(scheduler_id="s", key=TaskKey(dag_id="d", task_id=f"t{n}", run_id="r"))
            for n in range(5)]
    submit_many(client, jobs)
    dead = Intake(client=client, settings=settings, consumer="dies")
    dead.prepare()
    client.xreadgroup(keys.INTAKE_GROUP, "dies", {keys.JOBS_STREAM: ">"}, count=10)  # read, then died
    live = Intake(client=client, settings=settings, consumer="lives")
    wait_for(lambda: live.step(block_ms=10) and False or
             client.xpending(keys.JOBS_STREAM, keys.INTAKE_GROUP)["pending"] == 0,
             message="the live intake to reclaim and handle the entries")
    assert client.llen(keys.CELERY_QUEUE) >= 1
    assert all(client.hget(keys.job_key(job.job_id), "state") == b"dispatched" for job in jobs)


def test_intake_entry_delivered_too_often_goes_to_podq_dead(redis_url):
    client = connect(redis_url)
    settings = load_settings({}, intake=IntakeSettings(block_ms=10),
                             results=ResultsSettings(reclaim_idle_ms=1, max_deliveries=2))
    job = KubernetesJob.new(scheduler_id="s", key=TaskKey(dag_id="d", task_id="poison", run_id="r"))
    submit_many(client, [job])
    Intake(client=client, settings=settings, consumer="a").prepare()
    for _ in range(2):  # two intakes that each took the entry and crashed on it
        client.xreadgroup(keys.INTAKE_GROUP, "a", {keys.JOBS_STREAM: "0" if _ else ">"}, count=10)
    live = Intake(client=client, settings=settings, consumer="b")
    wait_for(lambda: live.step(block_ms=10) is not None and client.xlen(keys.DEAD_STREAM),
             message="the poison entry to go dead")
    [(_, fields)] = client.xrange(keys.DEAD_STREAM)
    assert fields[b"reason"] == b"delivered 3 times to group intake without an ack (limit 2)"
    assert fields[b"stream"] == keys.JOBS_STREAM.encode()
    assert client.xpending(keys.JOBS_STREAM, keys.INTAKE_GROUP)["pending"] == 0
    assert client.llen(keys.CELERY_QUEUE) == 0


def test_backlog_not_acked_by_the_caller_is_not_handed_out_again_and_again(redis_client):
    publish(redis_client, 4)
    consumer(redis_client, "peek").read()  # read, never acked
    restarted = consumer(redis_client, "peek", max_deliveries=2, batch_size=2)
    pages = [restarted.read(block_ms=0) for _ in range(4)]
    assert [len(page) for page in pages] == [2, 2, 0, 0]
    assert redis_client.xlen(keys.results_dead_stream("sched-a")) == 0
