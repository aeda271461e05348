"""Trimming podq's streams never drops what a group has not finished, short of the hard cap."""
from __future__ import annotations

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store import keys
from podq.broker.store.publish import Publisher
from podq.broker.store.trim import Trimmer, trimmed_unread
from podq.shared.naming import derive_job_id
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import TrimSettings
from podq.shared.states import Source, State

STREAM = keys.results_stream("sched")


def publish(client, start: int, count: int) -> list[KubernetesWatch]:
    results = []
    for n in range(start, start + count):
        key = TaskKey(dag_id="dag", task_id=f"t{n}", run_id="r")
        results.append(KubernetesWatch.build(job_id=derive_job_id("sched", key), scheduler_id="sched", key=key,
                                             source=Source.WATCHER, state=State.SUCCEEDED))
    Publisher(client).publish(results)
    return results


def reader(client, name: str, group: str = keys.RESULTS_GROUP) -> ResultsConsumer:
    return ResultsConsumer(client, scheduler_id="sched", consumer=name, group=group, block_ms=10)


def test_trimming_under_a_slow_consumer_loses_nothing(redis_client):
    trimmer = Trimmer(redis_client, TrimSettings(hard_cap=10_000))
    fast, slow = reader(redis_client, "fast"), reader(redis_client, "slow", group="audit")
    expected = {w.event_id for w in publish(redis_client, 0, 30)}
    fast_seen, slow_seen = set(), set()
    for round_ in range(6):
        batch = fast.read(count=10)  # the fast group keeps up
        fast_seen |= {r.event_id for r in batch}
        fast.ack(batch)
        slow_batch = slow.read(count=3)  # the slow group reads little and acks late
        slow_seen |= {r.event_id for r in slow_batch}
        trimmer.trim(STREAM)
        slow.ack(slow_batch[:1])  # leaves two pending each round until the next
        trimmer.trim(STREAM)
        if round_ % 2:
            slow.ack(slow_batch)
        expected |= {w.event_id for w in publish(redis_client, 100 + round_ * 5, 5)}
    # Everything the slow group has not read and acknowledged is still there for it,
    # including what it read and never acked (a restart re-reads that first).
    slow = reader(redis_client, "slow", group="audit")
    while batch := slow.read(count=100, block_ms=0):
        slow_seen |= {r.event_id for r in batch}
        slow.ack(batch)
        trimmer.trim(STREAM)
    assert slow_seen == expected
    while batch := fast.read(count=100, block_ms=0):
        fast_seen |= {r.event_id for r in batch}
        fast.ack(batch)
    assert fast_seen == expected
    trimmer.trim(STREAM)
    assert redis_client.xlen(STREAM) == 0
    assert trimmed_unread(redis_client, STREAM) == 0


def test_pending_entry_holds_the_trim_bound(redis_client):
    publish(redis_client, 0, 10)
    c = reader(redis_client, "c")
    batch = c.read(count=10)
    c.ack(batch[1:])  # the oldest entry stays pending
    report = Trimmer(redis_client).trim(STREAM)
    assert (report.removed, report.removed_unread) == (0, 0)
    c.ack(batch[:1])
    assert Trimmer(redis_client).trim(STREAM).removed == 10


def test_unread_entries_are_removed_only_past_the_hard_cap_and_counted(redis_client):
    publish(redis_client, 0, 25)  # an abandoned stream: its group never reads
    report = Trimmer(redis_client, TrimSettings(hard_cap=30)).trim(STREAM)
    assert (report.removed, report.removed_unread, redis_client.xlen(STREAM)) == (0, 0, 25)
    report = Trimmer(redis_client, TrimSettings(hard_cap=20)).trim(STREAM)
    assert (report.removed, report.removed_unread, redis_client.xlen(STREAM)) == (0, 5, 20)
    assert trimmed_unread(redis_client, STREAM) == 5
    assert redis_client.hget(keys.METRICS_KEY, f"trim_unread:{STREAM}") == b"5"


def test_pending_entry_removed_by_the_hard_cap_is_acked_on_redelivery(redis_client):
    publish(redis_client, 0, 5)
    first = reader(redis_client, "c").read(count=2)
    Trimmer(redis_client, TrimSettings(hard_cap=2)).trim(STREAM)
    restarted = reader(redis_client, "c")
    got = restarted.read()  # its two pending entries are gone: skipped and acked, then the rest
    assert [r.entry_id for r in got] == [eid.decode() for eid, _ in redis_client.xrange(STREAM)]
    assert not {r.entry_id for r in first} & {r.entry_id for r in got}
    restarted.ack(got)
    assert redis_client.xpending(STREAM, keys.RESULTS_GROUP)["pending"] == 0


def test_jobs_and_control_streams_are_trimmed_the_same_way(redis_client):
    from podq.broker.intake.service import Intake
    from podq.shared.settings import IntakeSettings, load_settings

    jobs = [KubernetesJob.new(scheduler_id="sched", key=TaskKey(dag_id="d", task_id=f"t{n}", run_id="r"))
            for n in range(6)]
    submit_many(redis_client, jobs[:3])
    intake = Intake(client=redis_client, settings=load_settings({}, intake=IntakeSettings(block_ms=10)),
                    consumer="i")
    intake.prepare()
    while intake.step(block_ms=10):
        pass
    submit_many(redis_client, jobs[3:])  # not read by intake yet
    trimmer = Trimmer(redis_client)
    assert keys.JOBS_STREAM in trimmer.streams() and keys.CONTROL_STREAM in trimmer.streams()
    assert STREAM in trimmer.streams()
    reports = {r.stream: r for r in trimmer.trim_all()}
    assert reports[keys.JOBS_STREAM].removed == 3
    assert redis_client.xlen(keys.JOBS_STREAM) == 3
    assert Trimmer(redis_client, TrimSettings(interval=3600)).maybe_run() is True
