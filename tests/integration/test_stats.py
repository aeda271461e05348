"""`podq results --stats` and `podq job status/cancel` print the figures a known backlog has."""
from __future__ import annotations

import dataclasses
import re

import pytest

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit
from podq.broker.intake.service import Intake
from podq.broker.store import keys
from podq.broker.store.publish import Publisher
from podq.cli import main
from podq.shared.naming import derive_job_id
from podq.shared.records import ControlRecord, FailureDetails, KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import IntakeSettings, load_settings
from podq.shared.states import ControlOp, Source, State


@pytest.fixture
def cli(redis_url, monkeypatch, capsys):
    monkeypatch.setenv("PODQ_REDIS_URL", redis_url)

    def run(*argv: str) -> tuple[int, str]:
        code = main(list(argv))
        return code, capsys.readouterr().out
    return run


def publish(client, count: int, scheduler_id: str = "sched") -> None:
    results = []
    for n in range(count):
        key = TaskKey(dag_id="dag", task_id=f"t{n}", run_id="r")
        results.append(KubernetesWatch.build(job_id=derive_job_id(scheduler_id, key), scheduler_id=scheduler_id,
                                             key=key, source=Source.WATCHER, state=State.RUNNING))
    Publisher(client).publish(results)


def test_stats_show_pending_and_lag_per_group(redis_client, cli):
    publish(redis_client, 12)
    one = ResultsConsumer(redis_client, scheduler_id="sched", consumer="one", block_ms=10)
    two = ResultsConsumer(redis_client, scheduler_id="sched", consumer="two", block_ms=10)
    batch = one.read(count=5)
    one.ack(batch[:2])  # one: 5 delivered, 2 acked -> 3 pending
    two.read(count=3)  # two: 3 delivered, none acked -> 3 pending; 4 never delivered
    audit = ResultsConsumer(redis_client, scheduler_id="sched", consumer="a", group="audit", block_ms=10)
    audit.ack(audit.read(count=12))  # a second group that is all caught up
    redis_client.xadd(keys.results_dead_stream("sched"), {"record": b"", "reason": "test"})

    code, out = cli("results", "--stats", "--scheduler-id", "sched")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "podq:results:sched  length=12  dead=1"
    assert re.fullmatch(r"  group audit  pending=0  lag=0  last_delivered=\S+  consumers=1", lines[1])
    assert re.fullmatch(r"    consumer a  pending=0  idle_ms=\d+", lines[2])
    assert re.fullmatch(r"  group scheduler  pending=6  lag=4  last_delivered=\S+  consumers=2", lines[3])
    assert re.fullmatch(r"    consumer one  pending=3  idle_ms=\d+", lines[4])
    assert re.fullmatch(r"    consumer two  pending=3  idle_ms=\d+", lines[5])


def test_stats_without_a_scheduler_cover_every_stream(redis_client, cli):
    publish(redis_client, 2, scheduler_id="s1")
    publish(redis_client, 3, scheduler_id="s2")
    code, out = cli("results", "--stats")
    assert code == 0
    heads = [line for line in out.splitlines() if not line.startswith(" ")]
    assert heads == ["podq:jobs  length=0  dead=0", "podq:control  length=0",
                     "podq:results:s1  length=2  dead=0", "podq:results:s2  length=3  dead=0"]
    assert "  group scheduler  pending=0  lag=3" in out


def test_results_without_scheduler_id_or_stats_is_an_error(cli, capsys):
    assert main(["results"]) == 2


def test_job_status_and_cancel(redis_client, cli):
    job = KubernetesJob.new(scheduler_id="sched", key=TaskKey(dag_id="d", task_id="t", run_id="r"))
    submit(redis_client, job)
    intake = Intake(client=redis_client, settings=load_settings({}, intake=IntakeSettings(block_ms=10)),
                    consumer="i")
    intake.prepare()
    intake.step(block_ms=10)
    code, out = cli("job", "status", job.job_id)
    assert code == 0
    assert f"job        {job.job_id}" in out
    assert "state      dispatched" in out
    assert "pod        default/d-t-" in out
    assert "result     -" in out

    code, out = cli("job", "cancel", job.job_id, "--reason", "operator")
    assert code == 0 and out.startswith(f"revoke requested for {job.job_id}")
    [(_, fields)] = redis_client.xrange(keys.CONTROL_STREAM)
    record = ControlRecord.decode(fields[b"record"])
    assert (record.op, record.job_id, record.scheduler_id, record.reason) == \
        (ControlOp.REVOKE, job.job_id, "sched", "operator")

    failed = KubernetesWatch.build(job_id=job.job_id, scheduler_id="sched", key=job.key, source=Source.WATCHER,
                                   state=State.FAILED, pod_name="p", namespace="default",
                                   failure_details=FailureDetails(reason="Error", message="boom", exit_code=3))
    Publisher(redis_client).publish([failed])
    code, out = cli("job", "status", job.job_id)
    assert "state      terminal (failed)" in out
    assert re.search(r"result     failed from watcher \(entry \S+\): Error boom exit 3", out)
    code, out = cli("job", "cancel", job.job_id)
    assert code == 1 and "already ended (failed)" in out


def test_job_status_of_an_unknown_job(cli):
    code, out = cli("job", "status", "0" * 32)
    assert code == 1 and "no job" in out


def test_many_streams_read_together_match_each_read_alone(redis_client):
    """all_stats reads every scheduler's stream in a fixed number of round trips; its figures are each
    stream's own, a scheduler whose stream is gone included."""
    from podq.broker.store.overview import overview
    from podq.broker.store.stats import all_stats, stream_stats
    from podq.broker.store.trim import Trimmer

    for n, count in enumerate((3, 0, 7)):
        publish(redis_client, count or 1, scheduler_id=f"s{n}")
    ResultsConsumer(redis_client, scheduler_id="s2", consumer="c").read(count=4, block_ms=10)
    redis_client.delete(keys.results_stream("s1"))        # known, but its stream was deleted
    redis_client.xadd(keys.results_dead_stream("s0"), {"reason": "x"})
    together = all_stats(redis_client)
    alone = [stream_stats(redis_client, figures.stream, dead_stream=(
        keys.DEAD_STREAM if figures.stream == keys.JOBS_STREAM else
        keys.results_dead_stream(figures.stream.removeprefix(keys.results_stream(""))) if
        figures.stream.startswith(keys.results_stream("")) else None)) for figures in together]
    def without_idle(figures):      # the one figure that moves between two reads
        return dataclasses.replace(figures, groups=tuple(dataclasses.replace(group, consumers=tuple(
            dataclasses.replace(consumer, idle_ms=0) for consumer in group.consumers)) for group in figures.groups))
    assert list(map(without_idle, together)) == list(map(without_idle, alone))
    by_stream = {figures.stream: figures for figures in together}
    assert by_stream[keys.results_stream("s1")].length == 0 and by_stream[keys.results_stream("s1")].groups == ()
    assert by_stream[keys.results_stream("s0")].dead == 1
    assert by_stream[keys.results_stream("s2")].groups[0].pending == 4
    scheduler = {figures.scheduler: figures for figures in overview(redis_client).schedulers}
    assert scheduler["s2"].pending == 4 and scheduler["s2"].oldest_pending_age is not None
    assert scheduler["s0"].oldest_pending_age is None
    # The trim pass over them all, pipelined: each stream's own report.
    reports = Trimmer(redis_client).trim_all()
    assert [report.stream for report in reports] == Trimmer(redis_client).streams()


def test_overview_counts_every_clusters_celery_queue(redis_client):
    from podq.broker.store.overview import overview

    # a named cluster's creates wait in its own queue; the default cluster's in podq.pods
    redis_client.sadd(keys.CLUSTERS_SET, "gpu")
    redis_client.rpush(keys.celery_queue(None), b"m1")
    redis_client.rpush(keys.celery_queue("gpu"), b"m2", b"m3")
    redis_client.zadd(keys.inflight_key("gpu"), {"job-a": 1.0})
    figures = overview(redis_client)
    assert (figures.queue_messages, figures.in_flight) == (3, 1)
