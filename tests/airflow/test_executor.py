"""PodqExecutor driven the way Airflow's scheduler loop drives it, against podq's real stack.

Embedded Valkey, kubesim (simulated kubelet), intake, workers and the watcher run as processes
(podq.stack); the executor is the real class under the real Airflow 3 BaseExecutor. Outcomes
come from kubesim's outcome annotations set through each task's pod_override.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from airflow.utils.state import TaskInstanceState

from podq.airflow.config import load_config
from podq.airflow.executor import PodqExecutor
from podq.airflow.launches import TaskInstanceRow
from podq.airflow.mapping import pod_command
from podq.broker.client.jobs import job_status
from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.kubesim.admin import Admin
from podq.shared.settings import load_settings
from podq.stack import Stack, StackOptions
from tests.support import core_v1

from tests.support.airflow_tasks import FakeTI, outcome, workload


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(workers=1, worker_concurrency=8, data_dir=str(tmp_path_factory.mktemp("stack")),
                           extra_env={"PODQ_WORKER_DELETE_ON_SUCCESS": "false"})
    with Stack(load_settings({}), options) as running:
        yield running


@pytest.fixture(scope="module")
def admin(stack):
    return Admin(stack.kubesim_url)


@pytest.fixture(autouse=True)
def short_runs(admin):
    admin.set_default_run_seconds(0.2)
    admin.clear_creates()


_job_ids = iter(range(100, 10_000))


def make_executor(stack, *, parallelism: int = 32, job_id: int | None = None, rows=None,
                  **options: str) -> PodqExecutor:
    """An executor; ``rows`` stands in for the metadata database (without it, launches are never checked)."""
    options.setdefault("stale_launch_check_interval", "1" if rows is not None else "0")
    config = load_config(lambda option: {"redis_url": stack.redis_url, **options}.get(option), env={})
    executor = PodqExecutor(parallelism=parallelism, config=config, task_instance_rows=rows)
    executor.job_id = job_id if job_id is not None else next(_job_ids)
    executor.start()
    return executor


class Loop:
    """The scheduler loop's calls: queue_workload, heartbeat, get_event_buffer; events collected."""

    def __init__(self, executor: PodqExecutor) -> None:
        self.executor = executor
        self.events: dict[Any, list[tuple[str, Any]]] = {}
        self.max_running = 0

    def queue(self, *works) -> None:
        for work in works:
            self.executor.queue_workload(work, session=None)

    def beat(self) -> None:
        self.executor.heartbeat()
        self.max_running = max(self.max_running, len(self.executor.running))
        for key, (state, info) in self.executor.get_event_buffer().items():
            self.events.setdefault(key, []).append((state, info))

    def final(self, key) -> str | None:
        states = [state for state, _ in self.events.get(key, []) if state in
                  (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)]
        return states[-1] if states else None

    def until(self, condition, *, timeout: float = 60.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}; events: {self.events}")
            self.beat()
            time.sleep(0.05)


def test_thirty_tasks_run_and_succeed_with_the_kubernetes_executors_command(stack, admin):
    executor = make_executor(stack)
    loop = Loop(executor)
    works = [workload(f"t{i}") for i in range(30)]
    loop.queue(*works)
    loop.until(lambda: all(loop.final(w.ti.key) for w in works), what="30 results")
    assert {loop.final(w.ti.key) for w in works} == {TaskInstanceState.SUCCESS}
    queued = [info for w in works for state, info in loop.events[w.ti.key] if state == TaskInstanceState.QUEUED]
    assert len(queued) == 30 and all(len(job_id) == 32 for job_id in queued)
    assert executor.running == set()
    assert admin.create_count() == 30
    from airflow.providers.cncf.kubernetes.pod_generator import workload_to_command_args
    with core_v1(stack.kubeconfig) as api:
        pods = {pod.metadata.annotations["task_id"]: pod for pod in api.list_namespaced_pod("default").items
                if pod.metadata.annotations.get("dag_id") == "podq_tests"}
        pod = pods["t7"]
        work = works[7]
        assert pod.spec.containers[0].args == workload_to_command_args(work) == pod_command(work.model_dump_json())
        labels = pod.metadata.labels
        assert labels["airflow-worker"] == str(executor.job_id) and labels["kubernetes_executor"] == "True"
        assert labels["airflow_version"].startswith("3.") and labels["try_number"] == "1"
        assert pod.metadata.annotations["task_instance_id"] == str(work.ti.id)
    executor.end()


def test_parallelism_caps_the_tasks_in_flight(stack):
    executor = make_executor(stack, parallelism=4)
    loop = Loop(executor)
    works = [workload(f"p{i}") for i in range(10)]
    loop.queue(*works)
    loop.until(lambda: all(loop.final(w.ti.key) for w in works), what="10 results")
    assert loop.max_running == 4
    executor.end()


def test_failure_details_reach_the_event_and_the_event_log(stack):
    executor = make_executor(stack)
    loop = Loop(executor)
    work = workload("boom", executor_config=outcome(exit_code="3"))
    oom = workload("oom", executor_config=outcome(outcome="OOMKilled"))
    loop.queue(work, oom)
    loop.until(lambda: loop.final(work.ti.key) and loop.final(oom.ti.key), what="two failures")
    assert loop.final(work.ti.key) == TaskInstanceState.FAILED
    info = loop.events[work.ti.key][-1][1]
    assert "failed: main container base terminated Error, exit code 3" in info
    assert "OOMKilled" in loop.events[oom.ti.key][-1][1]
    logged = {log.task_id: log.extra for log in executor._task_event_logs}
    assert "exit code 3" in logged["boom"] and "OOMKilled" in logged["oom"]
    executor.end()


def test_a_bad_executor_config_fails_the_task_with_the_reason(stack):
    executor = make_executor(stack)
    loop = Loop(executor)
    work = workload("legacy", executor_config={"KubernetesExecutor": {"image": "x"}})
    loop.queue(work)
    loop.beat()
    assert loop.events[work.ti.key] == [(TaskInstanceState.FAILED, pytest.approx(loop.events[work.ti.key][0][1]))]
    assert "legacy" in loop.events[work.ti.key][0][1]
    assert executor.running == set()
    executor.end()


def test_results_are_acked_only_after_airflow_took_the_events(stack):
    executor = make_executor(stack)
    client = connect(stack.redis_url)
    stream = keys.results_stream(executor.scheduler_id)
    work = workload("ack")
    executor.queue_workload(work, session=None)
    deadline = time.monotonic() + 60
    while not any(state == TaskInstanceState.SUCCESS for state, _ in executor.event_buffer.values()):
        assert time.monotonic() < deadline, "no success event"
        executor.heartbeat()
        time.sleep(0.05)
    pending = client.xpending(stream, keys.RESULTS_GROUP)["pending"]
    assert pending >= 1, "the success result is not acked while its event waits in the buffer"
    executor.get_event_buffer()
    executor.heartbeat()
    assert client.xpending(stream, keys.RESULTS_GROUP)["pending"] == 0
    client.close()
    executor.end()


def test_revoke_task_deletes_the_pod_and_adds_no_event(stack, admin):
    executor = make_executor(stack)
    loop = Loop(executor)
    work = workload("long", executor_config=outcome(run_seconds="600"))
    loop.queue(work)
    loop.until(lambda: any(state == TaskInstanceState.RUNNING for state, _ in loop.events.get(work.ti.key, [])),
               what="running")
    executor.revoke_task(ti=FakeTI.of(work))
    assert work.ti.key not in executor.running
    with core_v1(stack.kubeconfig) as api:
        def gone():
            loop.beat()
            return not [pod for pod in api.list_namespaced_pod("default", label_selector="task_id=long").items
                        if pod.metadata.labels.get("airflow-worker") == str(executor.job_id)]
        loop.until(gone, what="pod deleted")
    assert loop.final(work.ti.key) is None, "a revoked task gets no event (BaseExecutor.revoke_task)"
    executor.end()


def test_a_restarted_scheduler_adopts_running_tasks_without_relaunching(stack, admin):
    admin.set_default_run_seconds(3)
    first = make_executor(stack)
    loop = Loop(first)
    works = [workload(f"adopt{i}") for i in range(5)]
    loop.queue(*works)
    loop.until(lambda: all(any(s == TaskInstanceState.RUNNING for s, _ in loop.events.get(w.ti.key, []))
                           for w in works), what="5 running")
    job_ids = {w.ti.key: [info for s, info in loop.events[w.ti.key] if s == TaskInstanceState.QUEUED][0]
               for w in works}
    first.terminate()  # the scheduler dies: nothing more is read or acked
    second = make_executor(stack)
    tis = [FakeTI.of(w, external_executor_id=job_ids[w.ti.key], queued_by_job_id=first.job_id) for w in works]
    tis.append(FakeTI.of(workload("never-submitted"), queued_by_job_id=first.job_id))
    not_adopted = second.try_adopt_task_instances(tis)
    assert [ti.task_id for ti in not_adopted] == ["never-submitted"]
    adopted = Loop(second)
    adopted.until(lambda: all(adopted.final(w.ti.key) for w in works), what="adopted results")
    assert {adopted.final(w.ti.key) for w in works} == {TaskInstanceState.SUCCESS}
    assert admin.create_count() == 5, "adoption relaunches nothing"
    with core_v1(stack.kubeconfig) as api:
        workers = {pod.metadata.labels["airflow-worker"]
                   for pod in api.list_namespaced_pod("default", label_selector="dag_id=podq_tests").items
                   if pod.metadata.annotations["task_id"].startswith("adopt")}
    assert workers == {str(second.job_id)}
    second.end()


def test_get_task_log_says_when_it_has_no_api_access(stack):
    executor = make_executor(stack)
    logs, messages = executor.get_task_log(FakeTI.of(workload("x")), 1)
    assert logs == [] and "logs_from_kubernetes is false" in messages[0]
    executor.end()


def test_get_task_log_with_api_access_names_a_missing_pod(stack):
    executor = make_executor(stack, logs_from_kubernetes="true", kube_config_file=stack.kubeconfig)
    logs, messages = executor.get_task_log(FakeTI.of(workload("never-ran")), 1)
    assert logs == []
    assert messages == ["podq: no pod in namespace default matches dag_id=podq_tests,task_id=never-ran,"
                        "run_id=manual__1,try_number=1,kubernetes_executor=True"]
    executor.end()


def terminal_events(loop: Loop, key) -> list[str]:
    return [state for state, _ in loop.events.get(key, [])
            if state in (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)]


def test_each_launch_of_a_try_gets_its_own_pod_and_a_repeated_queueing_none(stack, admin):
    """A rescheduled sensor or a resumed deferral: Airflow queues the same try again with a new launch id."""
    executor = make_executor(stack)
    loop = Loop(executor)
    ti_id = uuid.uuid4()
    first = workload("sensor", ti_id=ti_id, external_executor_id=str(uuid.uuid4()))
    loop.queue(first)
    loop.until(lambda: loop.final(first.ti.key), what="the first launch's result")
    second = workload("sensor", ti_id=ti_id, external_executor_id=str(uuid.uuid4()))
    assert second.ti.key == first.ti.key, "the same try"
    loop.queue(second)
    loop.beat()
    executor.queue_workload(second, session=None)  # the same launch queued again: the same job
    loop.until(lambda: len(terminal_events(loop, first.ti.key)) == 2, what="the second launch's result")
    queued = [info for state, info in loop.events[first.ti.key] if state == TaskInstanceState.QUEUED]
    assert len(set(queued)) == 2, "two launches, two jobs (a repeat of one launch adds none)"
    assert terminal_events(loop, first.ti.key) == [TaskInstanceState.SUCCESS] * 2
    assert admin.create_count(name_prefix="podq-tests-sensor-") == 2
    with core_v1(stack.kubeconfig) as api:
        pods = api.list_namespaced_pod("default", label_selector="task_id=sensor").items
    assert {pod.metadata.annotations["podq.io/launch-id"] for pod in pods} == {
        first.ti.external_executor_id, second.ti.external_executor_id}
    assert {pod.metadata.labels["try_number"] for pod in pods} == {"1"}
    executor.end()


def test_a_superseded_launchs_end_never_reaches_airflow(stack, admin):
    """The first launch's pod ends after the second launch was queued: only the second's end is reported."""
    executor = make_executor(stack)
    loop = Loop(executor)
    ti_id = uuid.uuid4()
    first = workload("superseded", ti_id=ti_id, external_executor_id="launch-a",
                     executor_config=outcome(run_seconds="2", exit_code="3"))
    loop.queue(first)
    loop.until(lambda: any(state == TaskInstanceState.RUNNING for state, _ in loop.events.get(first.ti.key, [])),
               what="the first launch running")
    second = workload("superseded", ti_id=ti_id, external_executor_id="launch-b")
    loop.queue(second)
    with core_v1(stack.kubeconfig) as api:
        def both_ended():
            loop.beat()
            pods = api.list_namespaced_pod("default", label_selector="task_id=superseded").items
            return len(pods) == 2 and {pod.status.phase for pod in pods} == {"Succeeded", "Failed"}
        loop.until(both_ended, what="both pods ended")
    loop.until(lambda: terminal_events(loop, first.ti.key), what="the current launch's result")
    for _ in range(20):  # the superseded launch's failure has had every chance to arrive
        loop.beat()
    assert terminal_events(loop, first.ti.key) == [TaskInstanceState.SUCCESS]
    assert executor.running == set()
    executor.end()


def test_a_launch_airflow_no_longer_wants_is_revoked_before_its_pod_is_created(stack, admin):
    """apache/airflow #69760's stale launch: the task instance moved on while the launch waited."""
    moved_on: set[str] = set()

    def rows(ti_ids):
        return {ti_id: TaskInstanceRow(state="scheduled" if ti_id in moved_on else "queued", try_number=1,
                                       external_executor_id="launch-x") for ti_id in ti_ids}
    executor = make_executor(stack, rows=rows)
    loop = Loop(executor)
    fault = admin.add_fault(action="429", verb="create", name_prefix="podq-tests-stale-", retry_after=1)
    try:
        work = workload("stale", external_executor_id="launch-x")
        loop.queue(work)
        job_id = None
        deadline = time.monotonic() + 60
        while job_id is None or executor.launches.get(job_id) is None:
            assert time.monotonic() < deadline
            loop.beat()
            job_id = executor.job_ids.get(work.ti.key)
        client = connect(stack.redis_url)
        loop.until(lambda: admin.faults()[0]["fired"] >= 1, what="the create held back by 429s")
        moved_on.add(str(work.ti.id))
        loop.until(lambda: job_status(client, job_id).entry.state.value == "revoked", what="the launch revoked")
        client.close()
    finally:
        admin.remove_fault(fault)
    for _ in range(40):
        loop.beat()
        time.sleep(0.05)
    assert admin.create_count(name_prefix="podq-tests-stale-") == 0, "never created"
    assert loop.final(work.ti.key) is None, "a launch Airflow moved past gets no event"
    assert work.ti.key not in executor.running, "its slot is free"
    executor.end()


def test_adopting_another_schedulers_launch_drops_this_schedulers_earlier_one(stack, admin):
    """Two schedulers: B ran the first poke, A queued the next; B adopts A's task while the first poke's
    end is still on its way. Airflow's row names A's launch; the first launch's end must not reach it."""
    b = make_executor(stack)
    a = make_executor(stack)
    loop_b, loop_a = Loop(b), Loop(a)
    ti_id = uuid.uuid4()
    first = workload("handover", ti_id=ti_id, external_executor_id="launch-1",
                     executor_config=outcome(run_seconds="2"))
    loop_b.queue(first)
    loop_b.until(lambda: any(s == TaskInstanceState.RUNNING for s, _ in loop_b.events.get(first.ti.key, [])),
                 what="the first launch running on B")
    second = workload("handover", ti_id=ti_id, external_executor_id="launch-2",
                      executor_config=outcome(run_seconds="4"))
    loop_a.queue(second)
    loop_a.beat()
    second_job = a.job_ids[second.ti.key]
    client = connect(stack.redis_url)
    loop_b.until(lambda: job_status(client, second_job) is not None, what="A's launch in podq's ledger")
    client.close()
    a.terminate()  # A stops reading: its results move to B with the adoption
    ti = FakeTI.of(second, external_executor_id=second_job, queued_by_job_id=a.job_id, id=str(ti_id))
    assert b.try_adopt_task_instances([ti]) == []
    assert b.job_ids[second.ti.key] == second_job
    loop_b.until(lambda: terminal_events(loop_b, first.ti.key), timeout=90, what="the adopted launch's end")
    for _ in range(20):
        loop_b.beat()
    ends = [(state, info) for state, info in loop_b.events[first.ti.key]
            if state in (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)]
    assert ends == [(TaskInstanceState.SUCCESS, second_job)], "only the current launch's end, once"
    assert admin.create_count(name_prefix="podq-tests-handover-") == 2
    b.end()


def test_a_slot_whose_result_went_to_another_scheduler_is_freed_from_the_ledger(stack, admin, monkeypatch):
    """Airflow hands B a task whose job had already ended and whose result A took: B must not wait forever
    (a running slot leaked for good is how several schedulers stop launching, apache/airflow #32928)."""
    import podq.airflow.executor as executor_module

    monkeypatch.setattr(executor_module, "RESULT_GRACE_SECONDS", 1.0)
    a = make_executor(stack)
    loop_a = Loop(a)
    work = workload("leak", external_executor_id="launch-1")
    loop_a.queue(work)
    loop_a.until(lambda: loop_a.final(work.ti.key), what="A saw the job end")
    loop_a.beat()  # A acknowledges the result
    job_id = [info for state, info in loop_a.events[work.ti.key] if state == TaskInstanceState.QUEUED][0]
    a.terminate()

    def rows(ti_ids):
        return {ti_id: TaskInstanceRow(state="running", try_number=1, external_executor_id=job_id) for ti_id in ti_ids}
    b = make_executor(stack, rows=rows)
    ti = FakeTI.of(work, external_executor_id=job_id, queued_by_job_id=a.job_id, id=str(work.ti.id))
    assert b.try_adopt_task_instances([ti]) == []
    assert work.ti.key in b.running
    loop_b = Loop(b)
    loop_b.until(lambda: loop_b.final(work.ti.key), timeout=60, what="B reporting the end from podq's ledger")
    assert loop_b.final(work.ti.key) == TaskInstanceState.SUCCESS
    assert work.ti.key not in b.running, "the slot is free"
    assert admin.create_count(name_prefix="podq-tests-leak-") == 1
    b.end()


def test_start_with_an_unreachable_redis_fails_at_once_in_one_line():
    import socket

    from podq.broker.store.reach import RedisUnreachableError
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = load_config(lambda option: {"redis_url": f"redis://airflow:pw@127.0.0.1:{port}/0"}.get(option), env={})
    executor = PodqExecutor(parallelism=1, config=config)
    executor.job_id = 1
    with pytest.raises(RedisUnreachableError) as raised:
        executor.start()   # not ~27 s of retries
    message = str(raised.value)
    assert "\n" not in message and f"redis://airflow:***@127.0.0.1:{port}/0" in message and "pw" not in message


def task_log_records(executor: PodqExecutor, work) -> list[dict]:
    import json
    path = executor._task_logs.path_of(work.log_path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_queued_tasks_log_file_says_why_it_waits_and_what_ended_a_launch_that_never_ran(stack):
    """Airflow reads a queued task's log from its file only: the executor appends podq's lines there."""
    executor = make_executor(stack)
    loop = Loop(executor)
    waiting = workload("unschedulable", executor_config=outcome(outcome="Unschedulable"))
    bad_image = workload("bad_image", executor_config=outcome(outcome="ErrImagePull"))
    fine = workload("fine")
    loop.queue(waiting, bad_image, fine)
    loop.until(lambda: any("0/3 nodes are available" in record["event"]
                           for record in task_log_records(executor, waiting)), what="the Unschedulable reason")
    loop.until(lambda: loop.final(bad_image.ti.key) and loop.final(fine.ti.key), what="two ends")
    assert loop.final(bad_image.ti.key) == TaskInstanceState.FAILED
    records = task_log_records(executor, bad_image)
    failure = [record for record in records if record["level"] == "error"]
    assert failure[0]["event"].startswith("podq job ") and " failed: " in failure[0]["event"], records
    assert "ErrImagePull" in failure[0]["event"]
    assert all(record["logger"] == "podq.airflow.executor" for record in records)
    assert task_log_records(executor, fine) == []  # it ran: its own log says what happened
    executor.revoke_task(ti=FakeTI.of(waiting))
    executor.end()


def test_event_log_rows_stay_alive_until_the_scheduler_took_them(stack):
    """Airflow 3.3 saves the rows from a generator that pops them, with SQLAlchemy holding their states
    weakly: the executor holds each row until its next sync, after the scheduler loop took it."""
    import gc
    import weakref

    executor = make_executor(stack)
    key = workload("held").ti.key
    executor.log_task_event(event="podq pending", extra="why", ti_key=key)
    row = weakref.ref(executor._task_event_logs[0])
    taken = [executor._task_event_logs.popleft() for _ in range(len(executor._task_event_logs))]
    del taken
    gc.collect()
    assert row() is not None and row().event == "podq pending"   # the scheduler saves it now
    executor.sync()
    gc.collect()
    assert row() is None and executor._event_logs_held == []
    executor.end()
