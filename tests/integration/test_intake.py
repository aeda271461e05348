"""Intake against a real Valkey server: admission, ledger, dispatch, dead letters."""
from __future__ import annotations


import msgpack
import pytest

from podq.broker.client.jobs import job_status
from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import SubmitError, submit, submit_many
from podq.broker.intake.service import Intake
from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import Publisher
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.settings import IntakeSettings, load_settings
from podq.shared.states import LedgerState, Source, State
from tests.support import raw_map
from tests.support.workers import celery_jobs


def make_job(n: int, *, scheduler_id: str = "sched-a", **fields) -> KubernetesJob:
    key = TaskKey(dag_id="dag", task_id=f"task-{n}", run_id="run-1", try_number=1)
    return KubernetesJob.new(scheduler_id=scheduler_id, key=key, command=["echo", str(n)], **fields)


@pytest.fixture
def settings():
    return load_settings({}, intake=IntakeSettings(block_ms=10, jobs_per_message=4))


def started_intake(client, settings) -> Intake:
    """An intake consumer ``c1`` with its groups in place, as `podq intake` starts one."""
    intake = Intake(client=client, settings=settings, consumer="c1")
    intake.prepare()
    return intake


def drain(intake: Intake) -> None:
    while intake.step(block_ms=10):
        pass


def test_admitted_jobs_reach_celery_once_and_are_acked(redis_client, settings):
    jobs = [make_job(n) for n in range(10)]
    submit_many(redis_client, jobs)
    intake = started_intake(redis_client, settings)
    drain(intake)
    payloads = celery_jobs(redis_client)
    assert sorted(KubernetesJob.decode(p).job_id for p in payloads) == sorted(j.job_id for j in jobs)
    assert redis_client.llen(keys.CELERY_QUEUE) == 3  # 10 jobs, 4 per message
    ledger = Ledger(redis_client)
    assert {ledger.get(j.job_id).state for j in jobs} == {LedgerState.DISPATCHED}
    assert redis_client.xpending(keys.JOBS_STREAM, keys.INTAKE_GROUP)["pending"] == 0
    # The scheduler's results group exists before any result is published.
    groups = redis_client.xinfo_groups(keys.results_stream("sched-a"))
    assert [g["name"] for g in groups] == [b"scheduler"]


def test_resubmitted_job_is_not_dispatched_again(redis_client, settings):
    job = make_job(1)
    submit(redis_client, job)
    intake = started_intake(redis_client, settings)
    drain(intake)
    submit(redis_client, job)
    drain(intake)
    assert len(celery_jobs(redis_client)) == 1


def test_job_left_accepted_by_a_dead_intake_is_dispatched_again(redis_client, settings):
    job = make_job(1)
    submit(redis_client, job)
    # An intake that recorded the job and died before pushing it: the entry stays pending.
    Ledger(redis_client).accept_many([(job, "pod")])
    redis_client.xgroup_create(keys.JOBS_STREAM, keys.INTAKE_GROUP, id="0")
    redis_client.xreadgroup(keys.INTAKE_GROUP, "c1", {keys.JOBS_STREAM: ">"}, count=10)
    restarted = started_intake(redis_client, settings)
    drain(restarted)
    assert [KubernetesJob.decode(p).job_id for p in celery_jobs(redis_client)] == [job.job_id]


def test_malformed_records_go_to_dead_and_later_jobs_still_run(redis_client, settings):
    good = make_job(2)
    bad_key = make_job(3)
    redis_client.xadd(keys.JOBS_STREAM, {"record": b"\xc1 not msgpack"})
    redis_client.xadd(keys.JOBS_STREAM, {"something": b"else"})
    raw = msgpack.unpackb(bad_key.encode(), raw=False)
    raw["task_key"]["try_number"] = "one"
    redis_client.xadd(keys.JOBS_STREAM, {"record": msgpack.packb(raw)})
    wrong_ns = make_job(4, namespace="forbidden")
    submit_many(redis_client, [wrong_ns, good])
    intake = started_intake(redis_client, settings)
    drain(intake)
    dead = redis_client.xrange(keys.DEAD_STREAM)
    reasons = [fields[b"reason"].decode() for _id, fields in dead]
    assert len(reasons) == 4
    assert "not valid msgpack" in reasons[0]
    assert "no 'record' field" in reasons[1]
    assert "job.task_key.try_number: expected an integer, got string" == reasons[2]
    assert "job.namespace: 'forbidden' is not in the allowed namespaces" in reasons[3]
    assert [KubernetesJob.decode(p).job_id for p in celery_jobs(redis_client)] == [good.job_id]
    # The namespace refusal could be attributed: its scheduler reads a failed result.
    consumer = ResultsConsumer(redis_client, scheduler_id="sched-a", consumer="s1", block_ms=10)
    results = consumer.read()
    assert [(r.job_id, r.state) for r in results] == [(wrong_ns.job_id, State.FAILED)]
    assert "not in the allowed namespaces" in results[0].failure_details.message


def test_every_refused_job_with_a_readable_identity_reaches_its_scheduler_once(redis_client, settings):
    def raw_job(n: int, *extra) -> tuple[bytes, KubernetesJob]:
        job = make_job(n)
        return raw_map(("schema", "1.0"), ("kind", "job"), ("scheduler_id", "sched-a"),
                       ("task_key", job.key.to_wire()), *extra), job

    cases = [
        raw_job(1, ("command", b"\x92\xa4echo\xa2\xff\xfe")),                      # not UTF-8
        raw_job(2, ("pod_override", raw_map(("spec", raw_map(("nodeSelector", b"\x81\x01\xa1x")))))),  # int key
        raw_job(3, ("pod_override", raw_map(("metadata", raw_map(("labels", raw_map(("a", "1"), ("a", "2")))))))),
        raw_job(4, ("submitted_at", b"\xd6\xff\x00\x00\x00\x01")),                   # timestamp extension
    ]
    hijack, _ = raw_job(5, ("scheduler_id", "sched-b"))  # a second scheduler_id: nobody to tell
    for payload, _job in cases:
        redis_client.xadd(keys.JOBS_STREAM, {"record": payload})
        redis_client.xadd(keys.JOBS_STREAM, {"record": payload})  # refused twice: still one result
    redis_client.xadd(keys.JOBS_STREAM, {"record": hijack})
    drain(started_intake(redis_client, settings))

    reasons = [fields[b"reason"].decode() for _id, fields in redis_client.xrange(keys.DEAD_STREAM)]
    assert reasons[::2][:4] == ["job.command[1]: a string is not valid UTF-8",
                                "job.pod_override.spec.nodeSelector: map keys must be strings, got integer",
                                "job.pod_override.metadata.labels: duplicate map key 'a'",
                                "job.submitted_at: msgpack extension types are not allowed"]
    assert reasons[-1] == "job: duplicate map key 'scheduler_id'"
    assert celery_jobs(redis_client) == []
    consumer = ResultsConsumer(redis_client, scheduler_id="sched-a", consumer="s1", block_ms=10)
    results = consumer.read()
    assert sorted((r.job_id, r.state, r.failure_details.reason) for r in results) == sorted(
        (job.job_id, State.FAILED, "Rejected") for _payload, job in cases)
    assert {r.failure_details.message for r in results} == set(reasons[::2][:4])
    assert not redis_client.exists(keys.results_stream("sched-b"))
    # Each is in the ledger as ended, with its failed result, so nothing waits for it.
    for _payload, job in cases:
        status = job_status(redis_client, job.job_id)
        assert status.entry.state is LedgerState.TERMINAL and status.entry.terminal_state == "failed"
        assert status.entry.scheduler_id == "sched-a" and status.last_result.source is Source.INTAKE
    # A good copy submitted afterwards is the same job, which has ended: it is not run.
    submit(redis_client, cases[0][1])
    drain(started_intake(redis_client, settings))
    assert celery_jobs(redis_client) == []
    consumer.ack(results)
    assert consumer.read() == []


def test_a_broken_duplicate_of_an_admitted_job_does_not_end_it(redis_client, settings):
    job = make_job(1)
    submit(redis_client, job)
    broken = msgpack.unpackb(job.encode())
    broken["namespace"] = "forbidden"
    redis_client.xadd(keys.JOBS_STREAM, {"record": msgpack.packb(broken)})
    drain(started_intake(redis_client, settings))
    assert Ledger(redis_client).get(job.job_id).state is LedgerState.DISPATCHED
    assert ResultsConsumer(redis_client, scheduler_id="sched-a", consumer="s1", block_ms=10).read() == []
    assert redis_client.xlen(keys.DEAD_STREAM) == 1


def test_submit_with_settings_raises_intakes_message(redis_client, settings):
    with pytest.raises(SubmitError, match="no template named 'missing'"):
        submit(redis_client, make_job(1, pod_template="missing"), settings=settings)
    assert redis_client.xlen(keys.JOBS_STREAM) == 0


def test_intake_rides_out_nothing_to_read(redis_url, settings):
    client = connect(redis_url, block_ms=10)
    intake = Intake(client=client, settings=settings, consumer="c1")
    intake.prepare()
    assert intake.step(block_ms=10) == 0


def test_a_finished_job_leaves_its_bookkeeping_and_its_ledger_entry_expires(redis_client, settings):
    job = make_job(1)
    submit(redis_client, job)
    intake = started_intake(redis_client, settings)
    drain(intake)
    assert redis_client.zscore(keys.INFLIGHT_ZSET, job.job_id) is not None
    assert redis_client.sismember(keys.scheduler_jobs_key(job.scheduler_id), job.job_id)
    Publisher(redis_client, ledger_ttl=3600).publish([KubernetesWatch.build(
        job_id=job.job_id, scheduler_id=job.scheduler_id, key=job.key, source=Source.WATCHER, state=State.SUCCEEDED)])
    assert redis_client.zscore(keys.INFLIGHT_ZSET, job.job_id) is None
    assert not redis_client.sismember(keys.scheduler_jobs_key(job.scheduler_id), job.job_id)
    assert 3500 < redis_client.ttl(keys.job_key(job.job_id)) <= 3600


def test_intake_refuses_a_template_no_worker_could_build_from(redis_client, tmp_path):
    # Intake and the workers read templates through one store with one set of rules.
    (tmp_path / "secret.yaml").write_text("kind: Secret\nspec: {containers: [{name: x}]}\n")
    (tmp_path / "gpu.yaml").write_text("kind: Pod\nspec: {containers: [{name: base, image: gpu:1}]}\n")
    settings = load_settings({}, intake=IntakeSettings(block_ms=10, jobs_per_message=4, templates_dir=str(tmp_path)))
    refused, admitted = make_job(1, pod_template="secret"), make_job(2, pod_template="gpu")
    submit_many(redis_client, [refused, admitted])
    drain(started_intake(redis_client, settings))
    assert [KubernetesJob.decode(p).job_id for p in celery_jobs(redis_client)] == [admitted.job_id]
    results = ResultsConsumer(redis_client, scheduler_id="sched-a", consumer="s1", block_ms=10).read()
    assert [(r.job_id, r.state) for r in results] == [(refused.job_id, State.FAILED)]
    assert results[0].failure_details.message == \
        "job.pod_template: template 'secret' is not a Pod (its kind is another)"


def test_intake_refuses_a_namespace_no_watcher_is_set_to_watch(redis_client):
    env = {"PODQ_INTAKE_NAMESPACES": "team-a,default", "PODQ_WATCHER_NAMESPACES": "default",
           "PODQ_INTAKE_BLOCK_MS": "10"}
    refused, admitted = make_job(1, namespace="team-a"), make_job(2, namespace="default")
    submit_many(redis_client, [refused, admitted])
    drain(started_intake(redis_client, load_settings(env)))
    assert [KubernetesJob.decode(p).job_id for p in celery_jobs(redis_client)] == [admitted.job_id]
    results = ResultsConsumer(redis_client, scheduler_id="sched-a", consumer="s1", block_ms=10).read()
    assert [(r.job_id, r.state) for r in results] == [(refused.job_id, State.FAILED)]
    assert "'team-a' is not watched (PODQ_WATCHER_NAMESPACES: default)" in results[0].failure_details.message


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_refused_jobs_failed_result_carries_its_traceparent(redis_client, settings):
    # docs/protocol.md: every result about a job carries its traceparent; a refusal is one too.
    traced = make_job(1, namespace="forbidden", traceparent=TRACEPARENT)
    untraced = make_job(2, namespace="forbidden")
    submit_many(redis_client, [traced, untraced])
    drain(started_intake(redis_client, settings))
    consumer = ResultsConsumer(redis_client, scheduler_id="sched-a", consumer="s1", block_ms=10)
    annotations = {result.job_id: result.annotations for result in consumer.read()}
    assert annotations == {traced.job_id: {"podq.io/traceparent": TRACEPARENT}, untraced.job_id: {}}


def test_an_oversize_job_whose_ids_can_be_read_gets_a_failed_result(redis_client, settings):
    job = KubernetesJob.new(scheduler_id="sched-a", key=TaskKey(dag_id="d", task_id="big", run_id="r"),
                            command=["x" * (300 * 1024)])   # over the 256 KiB decode limit
    redis_client.xadd(keys.JOBS_STREAM, {"record": job.encode()})
    drain(started_intake(redis_client, settings))
    consumer = ResultsConsumer(redis_client, scheduler_id="sched-a", consumer="s1", block_ms=10)
    (result,) = consumer.read()
    assert (result.job_id, result.state, result.failure_details.reason) == (job.job_id, State.FAILED, "Rejected")
    assert result.failure_details.message.startswith("job: record is ")
    assert result.failure_details.message.endswith("bytes, over the 262144-byte limit")


def test_a_burst_from_one_scheduler_does_not_hold_another_schedulers_job_behind_it(redis_client):
    # No create budget: every admitted job goes straight to the Celery queue (nothing waits in lines).
    settings = load_settings({"PODQ_WORKER_CREATE_RATE": "0"},
                             intake=IntakeSettings(block_ms=10, batch_size=100, read_ahead=10_000))
    burst = [make_job(n, scheduler_id="sched-burst") for n in range(3000)]
    submit_many(redis_client, burst)
    late = make_job(0, scheduler_id="sched-late")
    submit(redis_client, late)
    intake = started_intake(redis_client, settings)
    intake.step(block_ms=10)
    ledger = Ledger(redis_client)
    # One batch of 100 admitted: the late scheduler's job among them, though 3,000 came before it.
    assert ledger.get(late.job_id).state is LedgerState.DISPATCHED
    admitted = [job for job in burst if ledger.get(job.job_id) is not None]
    assert admitted == burst[:99]
    # The rest are read ahead, pending in intake's group until admitted and acknowledged.
    assert redis_client.xpending(keys.JOBS_STREAM, keys.INTAKE_GROUP)["pending"] == 3000 - 99
    drain(intake)
    assert all(ledger.get(job.job_id).state is LedgerState.DISPATCHED for job in burst)
    assert redis_client.xpending(keys.JOBS_STREAM, keys.INTAKE_GROUP)["pending"] == 0


def test_entries_read_ahead_are_admitted_by_the_next_intake_after_a_crash(redis_client):
    settings = load_settings({"PODQ_WORKER_CREATE_RATE": "0"},
                             intake=IntakeSettings(block_ms=10, batch_size=50, read_ahead=10_000))
    jobs = [make_job(n) for n in range(500)]
    submit_many(redis_client, jobs)
    first = started_intake(redis_client, settings)
    first.step(block_ms=10)   # admits 50, reads the other 450 ahead; then it dies
    assert len(first.arrivals) == 450
    restarted = started_intake(redis_client, settings)   # the same consumer name, as a restart has
    drain(restarted)
    ledger = Ledger(redis_client)
    assert all(ledger.get(job.job_id).state is LedgerState.DISPATCHED for job in jobs)
    assert sorted(KubernetesJob.decode(p).job_id for p in celery_jobs(redis_client)) == sorted(j.job_id for j in jobs)
    assert redis_client.xpending(keys.JOBS_STREAM, keys.INTAKE_GROUP)["pending"] == 0
