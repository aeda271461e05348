"""A finished job's ledger entry, compacted when its terminal result latches (lua/lib/compact.lua) to a few
short-named fields, still does every job the retention keeps it for: job status, turning a resubmission away,
adoption of an unread result, the completion policy's pod, a late delivery's claim, and the exact created
total."""
from __future__ import annotations

from podq.broker.client.jobs import job_status
from podq.broker.store import adoption, counters, keys, streams
from podq.broker.store.ledger import Lease, Ledger
from podq.broker.store.publish import Item, Publisher
from podq.broker.store.retained import RETAINED_NAMES
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.states import LedgerState, Source, State

WEEK = 7 * 24 * 3600
UID = "0b4f3c1e-6a1d-4c55-9d3e-2f1b7c8a9e01"


def airflow_job(n: int, scheduler_id: str = "old") -> KubernetesJob:
    """A job shaped like the Airflow executor's: its command carries a workload JSON of ~900 bytes."""
    key = TaskKey(dag_id="example_dag", task_id=f"transform_{n}", run_id="scheduled__2026-12-05T00:00:00+00:00")
    workload = '{"ti": {"id": "%s", "pool": "default_pool"}, "dag_rel_path": "dags/example.py"%s}' % (n, " " * 800)
    return KubernetesJob.new(scheduler_id=scheduler_id, key=key, namespace="airflow",
                             command=("python", "-m", "airflow.sdk.execution_time.execute_workload",
                                      "--json-string", workload))


def run_to_the_end(client, job: KubernetesJob, state: State = State.SUCCEEDED) -> tuple[Ledger, str]:
    """accept → dispatched → claimed → created(UID) → terminal result; returns the ledger and the entry id."""
    ledger = Ledger(client)
    pod_name = pod_name_for(job.job_id, job.key)
    assert ledger.accept_many([(job, pod_name)]) == ["new"]
    ledger.mark_dispatched([job.job_id])
    ledger.claim_job(job.job_id, Lease(token="t", seconds=30, grace=5))
    assert ledger.mark_created(job.job_id, uid=UID) == (True, "created")
    result = KubernetesWatch.build(job_id=job.job_id, scheduler_id=job.scheduler_id, key=job.key,
                                   source=Source.WATCHER, state=state, pod_name=pod_name, namespace="airflow")
    entry_id = Publisher(client, ledger_ttl=WEEK).publish_items([Item(result=result, pod_uid=UID)]).entries[0]
    assert entry_id
    return ledger, entry_id


def test_a_finished_job_keeps_only_the_retained_fields_small_and_for_the_retention(redis_client):
    job = airflow_job(1)
    ledger = Ledger(redis_client)
    ledger.accept_many([(job, pod_name_for(job.job_id, job.key))])
    ledger.mark_dispatched([job.job_id])
    ledger.claim_job(job.job_id, Lease(token="t", seconds=30, grace=5))
    ledger.mark_created(job.job_id, uid=UID)
    in_flight = redis_client.memory_usage(keys.job_key(job.job_id), samples=0)

    run_to_the_end(redis_client, airflow_job(2))
    key = keys.job_key(airflow_job(2).job_id)
    fields = {name.decode(): value.decode() for name, value in redis_client.hgetall(key).items()}
    short = {name: RETAINED_NAMES[name] for name in ("terminal_state", "scheduler_id", "namespace", "pod_name",
                                                     "uid", "deliveries", "accepted_at", "last_entry")}
    assert set(fields) == {"state", *short.values()}, fields    # updated_at is last_entry's time; launch 1 left out
    assert fields[short["pod_name"]] == "example-dag-transform-2-"   # the job id's 16 characters left out
    assert redis_client.object("encoding", key) == b"listpack"
    finished = redis_client.memory_usage(key, samples=0)
    assert finished <= 300 and finished * 7 < in_flight, (finished, in_flight)
    assert WEEK - 60 < redis_client.ttl(key) <= WEEK
    # Read back under the long names, whole: the times in whole seconds, the end's from the entry id.
    job = airflow_job(2)
    entry = ledger.get(job.job_id)
    assert (entry.state, entry.terminal_state, entry.scheduler_id, entry.namespace, entry.uid, entry.deliveries,
            entry.launch) == (LedgerState.TERMINAL, "succeeded", "old", "airflow", UID, 1, 1)
    assert entry.pod_name == pod_name_for(job.job_id, job.key)
    assert entry.accepted_at == int(entry.accepted_at) and entry.updated_at >= entry.accepted_at
    assert entry.updated_at == int(entry.last_entry.split("-")[0]) / 1000
    summary = ledger.entries([job.job_id])[job.job_id]     # the reconciler's and relist's fields
    assert (summary.terminal_state, summary.pod_name, summary.namespace, summary.updated_at) == (
        "succeeded", entry.pod_name, "airflow", entry.updated_at)


def test_a_late_delivery_of_a_compacted_job_reads_its_owner_and_deliveries(redis_client):
    job = airflow_job(8)
    ledger, _ = run_to_the_end(redis_client, job)
    claim = ledger.claim_job(job.job_id, Lease(token="late", seconds=30, grace=5))
    assert (claim.state, claim.owner, claim.deliveries, claim.busy, claim.launch) == (
        LedgerState.TERMINAL, "old", 1, False, 1)
    assert ledger.relaunch(job.job_id, pod_name=pod_name_for(job.job_id, job.key), launch=1,
                           next_pod_name="next", max_launches=3) == ("NO", "ended")
    assert ledger.get(job.job_id).job is None and redis_client.hget(keys.job_key(job.job_id), "job_id") is None


def test_a_compacted_entry_answers_job_status(redis_client):
    job = airflow_job(3)
    _, entry_id = run_to_the_end(redis_client, job, State.FAILED)
    status = job_status(redis_client, job.job_id)
    assert status is not None and status.last_entry_id == entry_id
    assert status.entry.state is LedgerState.TERMINAL and status.entry.terminal_state == "failed"
    assert status.entry.job is None and status.last_result.state is State.FAILED
    text = "\n".join(status.lines())
    assert f"uid={UID}" in text and "airflow/" + pod_name_for(job.job_id, job.key) in text
    assert f"task       {job.key}" in text           # from the result, still in the stream
    assert "deliveries 1" in text
    # Once the stream no longer holds the result, the ledger alone still says how the job ended.
    redis_client.xdel(keys.results_stream("old"), entry_id)
    assert f"result     failed (entry {entry_id}, trimmed)" in job_status(redis_client, job.job_id).lines()


def test_a_compacted_entry_turns_a_resubmission_away(redis_client):
    job = airflow_job(4)
    ledger, _ = run_to_the_end(redis_client, job)
    again = KubernetesJob.new(scheduler_id=job.scheduler_id, key=job.key, namespace="airflow")
    assert ledger.accept_many([(again, pod_name_for(again.job_id, again.key))]) == [LedgerState.TERMINAL.value]
    assert ledger.get(job.job_id).job is None          # nothing was written back
    assert not redis_client.sismember(keys.scheduler_jobs_key("old"), job.job_id)


def test_an_unread_result_of_a_compacted_job_is_still_adopted(redis_client):
    job = airflow_job(5)
    run_to_the_end(redis_client, job)
    step = adoption.adopt_step(redis_client, old="old", new="new")
    assert step.moved_results == 1
    moved = [KubernetesWatch.decode(streams.record_of(fields))
             for _id, fields in redis_client.xrange(keys.results_stream("new"))]
    assert [(result.job_id, result.state, result.scheduler_id) for result in moved] == [
        (job.job_id, State.SUCCEEDED, "new")]


def test_a_late_create_of_a_compacted_job_is_counted_exactly(redis_client):
    """The pod that ended the job is not counted again; a pod created after the end counts once."""
    job = airflow_job(6)
    ledger, _ = run_to_the_end(redis_client, job)
    before = counters.totals(redis_client).get(counters.CREATED, 0)
    assert ledger.mark_created(job.job_id, uid=UID) == (False, LedgerState.TERMINAL.value)
    assert counters.totals(redis_client).get(counters.CREATED, 0) == before
    ledger.mark_created(job.job_id, uid="late-pod")
    ledger.mark_created(job.job_id, uid="late-pod")
    assert counters.totals(redis_client).get(counters.CREATED, 0) == before + 1
    assert redis_client.hget(keys.job_key(job.job_id), RETAINED_NAMES["undone_uid"]) == b"late-pod"
    assert ledger.get(job.job_id).uid == UID


def test_a_refused_job_keeps_its_reason_after_compaction(redis_client):
    job = airflow_job(7)
    ledger = Ledger(redis_client)
    assert ledger.refuse([(job.job_id, job.scheduler_id, "job.namespace: not allowed")]) == [True]
    failed = KubernetesWatch.build(job_id=job.job_id, scheduler_id=job.scheduler_id, key=job.key,
                                   source=Source.BROKER, state=State.FAILED)
    assert Publisher(redis_client, ledger_ttl=WEEK).publish([failed])[0]
    entry = ledger.get(job.job_id)
    assert entry.refused == "job.namespace: not allowed" and entry.terminal_state == "failed"
    assert job_status(redis_client, job.job_id).summary() == "refused by intake: job.namespace: not allowed"
    # Refused again (a redelivered submission): it stays refused with its first reason, and its failed
    # result is asked for again (the latch drops it).
    before = redis_client.hgetall(keys.job_key(job.job_id))
    assert ledger.refuse([(job.job_id, job.scheduler_id, "another reason")]) == [True]
    assert Publisher(redis_client, ledger_ttl=WEEK).publish([failed]) == [""]
    assert redis_client.hgetall(keys.job_key(job.job_id)) == before
    # A finished job that was admitted is not ended again by a refused duplicate.
    admitted = airflow_job(9)
    run_to_the_end(redis_client, admitted)
    assert ledger.refuse([(admitted.job_id, admitted.scheduler_id, "broken duplicate")]) == [False]
    assert ledger.get(admitted.job_id).refused is None
