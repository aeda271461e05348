"""``PodqExecutor``: Airflow 3 runs its tasks as podq jobs (``[core] executor = podq.airflow.executor.PodqExecutor``).

The scheduler talks only to Redis: workloads go to ``podq:jobs`` through :func:`submit_many`,
results come back from ``podq:results:<scheduler id>`` through a :class:`ResultsConsumer`, and
revoke and adopt are control records. podq's workers create the pods and its watcher watches
them, so the scheduler holds no Kubernetes credentials (docs/airflow.md).

Each queueing of a task instance is a launch with its own podq job (:mod:`.launches`): a sensor
rescheduled or a task resumed after deferral gets a new pod under the same try, a repeated queueing
of the same launch never a second one, and results of a superseded launch never reach Airflow.
Launches Airflow no longer wants (cleared, reset, queued again elsewhere) are revoked before their
pod is created.

Results are acknowledged only once Airflow has taken their events: ``get_event_buffer`` hands
the events out and the entries are acked at the start of the next ``sync()``, after the
scheduler loop committed them. A crash in between re-reads them; Airflow ignores an event for a
task instance that is no longer queued or running, so a repeat is harmless.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from airflow.executors.base_executor import BaseExecutor
from airflow.utils.state import TaskInstanceState

from podq.broker.client.control import revoke, send_control
from podq.broker.client.jobs import job_entries, job_status
from podq.broker.client.results import ResultsConsumer
from podq.broker.client.submit import submit_many
from podq.broker.store.reach import reach
from podq.shared.records import ControlRecord, KubernetesJob, KubernetesResults
from podq.shared.states import CREATABLE_STATES, ControlOp, LedgerState

from . import mapping
from .config import SECTION, ExecutorConfig, load_config
from .kube import PodLogs, serialize_override
from .launches import Launch, TaskInstanceRow, launch_id_of, still_wanted
from .mapping import Event
from .tasklog import TaskLogFiles

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancekey import TaskInstanceKey

log = logging.getLogger(__name__)

# How long a running task's job may stand ended (or owned by another scheduler) in podq's ledger before
# the executor stops waiting for its result and reports from the ledger (the result went elsewhere).
RESULT_GRACE_SECONDS = 30.0
_ENDED = frozenset({LedgerState.TERMINAL, LedgerState.REVOKED})


class PodqExecutor(BaseExecutor):
    """Airflow's executor interface over podq's public client API."""

    supports_ad_hoc_ti_run: bool = True
    is_local: bool = False
    serve_logs: bool = False
    # Airflow writes a fresh external_executor_id at every queueing: the launch id (.launches).
    pre_assigns_external_executor_id: ClassVar[bool] = True

    def __init__(self, *args: Any, config: ExecutorConfig | None = None,
                 task_instance_rows: Callable[[list[str]], dict[str, TaskInstanceRow]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Reads the metadata database (tests without one pass their own).
        self._task_instance_rows = task_instance_rows or _task_instance_rows
        self.config = config or load_config(lambda option: self.conf.get(SECTION, option, fallback=None))
        self.client = None
        self.consumer: ResultsConsumer | None = None
        self.scheduler_id: str | None = None
        # The current launch's job per task instance key; launches submitted and not yet running.
        self.job_ids: dict[TaskInstanceKey, str] = {}
        self.launches: dict[str, Launch] = {}
        self._superseded: set[str] = set()  # jobs of earlier launches whose end Airflow must not see
        self._ended_unseen: dict[str, float] = {}  # job id -> when the ledger first showed it ended here unseen
        self._next_launch_check = 0.0
        # Entries whose events are in the buffer, by key; moved to _taken when Airflow takes them.
        self._awaiting: dict[TaskInstanceKey, list[str]] = defaultdict(list)
        self._taken: list[str] = []
        self._revoked: set[str] = set()
        self._logs = PodLogs(self.config) if self.config.logs_from_kubernetes else None
        self._task_logs = _task_log_files(self.conf) if self.config.queued_task_log else None
        self._log_paths: dict[str, str] = {}  # job id -> its try's task log file (.tasklog), until it ends
        self._event_logs_held: list[Any] = []  # event-log rows until the scheduler saved them (log_task_event)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.scheduler_id = mapping.scheduler_id(self.config.scheduler_id_prefix, self.job_id)
        # An unreachable Redis or refused credentials stop the scheduler at start with one line, not after ~27 s.
        self.client = reach(self.config.redis_url)
        self.consumer = ResultsConsumer(self.client, scheduler_id=self.scheduler_id, consumer=self.config.consumer,
                                        batch_size=self.config.results_batch, block_ms=0)
        log.info("podq executor started: scheduler id %s, results consumer %s", self.scheduler_id,
                 self.config.consumer)

    def end(self) -> None:
        """Take the results that are in and stop; running tasks stay with podq for the next scheduler."""
        if self.consumer is not None:
            self.sync()
            self._ack_taken()
        self._close()

    def terminate(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None
        self.consumer = None

    # -- launching -------------------------------------------------------------------------------

    def _process_workloads(self, workloads: Sequence[Any]) -> None:
        from airflow.executors.workloads import ExecuteTask

        jobs: list[tuple[TaskInstanceKey, KubernetesJob, Any]] = []
        for workload in workloads:
            if not isinstance(workload, ExecuteTask):
                raise RuntimeError(f"{type(self).__name__} cannot handle workloads of type {type(workload).__name__}")
            key = workload.ti.key
            del self.queued_tasks[key]
            self.running.add(key)
            try:
                job = self._job_for(workload)
            except mapping.WorkloadError as exc:
                log.error("task %s cannot run on podq: %s", key, exc)
                self.fail(key, info=str(exc))
                continue
            jobs.append((key, job, workload))
        if not jobs:
            return
        try:
            submit_many(self.client, [job for _, job, _ in jobs])
        except Exception:  # noqa: BLE001 - Redis away: hand the tasks back, the next heartbeat retries
            log.exception("submitting %d task(s) to podq failed; they stay queued in the executor", len(jobs))
            for key, _, workload in jobs:
                self.running.discard(key)
                self.queued_tasks[key] = workload
            return
        for key, job, workload in jobs:
            superseded = self.job_ids.get(key)
            if superseded is not None and superseded != job.job_id:
                self._superseded.add(superseded)
                log.info("task %s: launch %s supersedes job %s (job %s)", key, job.key.launch_id, superseded,
                         job.job_id)
            self.job_ids[key] = job.job_id
            self.launches[job.job_id] = Launch(job_id=job.job_id, key=key, ti_id=_ti_id(workload.ti),
                                               launch_id=job.key.launch_id)
            if getattr(workload, "log_path", None):
                self._log_paths[job.job_id] = workload.log_path
            # QUEUED with the job id: Airflow stores it as the TI's external_executor_id (adoption reads it).
            self.event_buffer[key] = (TaskInstanceState.QUEUED, job.job_id)

    def _job_for(self, workload: Any) -> KubernetesJob:
        from airflow import __version__ as airflow_version

        ti = workload.ti
        executor_config = ti.executor_config or {}
        mapping.check_executor_config(executor_config)
        override = serialize_override(executor_config.get("pod_override"))
        return mapping.build_job(
            scheduler=self.scheduler_id, key=self._task_key(ti.key, launch_id_of(ti)),
            workload_json=workload.model_dump_json(), config=self.config, queue=ti.queue,
            executor_config=executor_config, override=override, airflow_version=airflow_version,
            ti_id=_ti_id(ti), priority_weight=getattr(ti, "priority_weight", None))

    @staticmethod
    def _task_key(key: TaskInstanceKey, launch_id: str | None = None):
        return mapping.task_key(dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id,
                                try_number=key.try_number, map_index=key.map_index, launch_id=launch_id)

    # -- results ---------------------------------------------------------------------------------

    def sync(self) -> None:
        self._release_event_logs()
        if self.consumer is None:
            return
        try:
            self._ack_taken()
            handled = 0
            while handled < self.config.max_results_per_sync:
                results = self.consumer.read(block_ms=0)
                if not results:
                    break
                handled += len(results)
                self.consumer.ack([result for result in results if not self._apply(result)])
        except Exception:  # noqa: BLE001 - Redis away: the scheduler loop goes on, the next sync resumes
            log.exception("reading podq results failed; retrying on the next heartbeat")
        self._check_launches()

    def _apply(self, result: KubernetesResults) -> bool:
        """Turn one result into an executor event; True when it waits for Airflow to take it."""
        from airflow.models.taskinstancekey import TaskInstanceKey

        key = TaskInstanceKey(dag_id=result.key.dag_id, task_id=result.key.task_id, run_id=result.key.run_id,
                              try_number=result.key.try_number, map_index=result.key.map_index)
        event = mapping.EVENTS[result.state]
        never_ran = result.job_id in self.launches  # no running (nor any end) of it came before
        log_path = self._log_paths.pop(result.job_id, None) if result.terminal or event is Event.FREED \
            else self._log_paths.get(result.job_id)
        if event is not Event.NOTHING:
            self.launches.pop(result.job_id, None)  # started, ended or adopted: no longer revocable unseen
        current = self.job_ids.get(key)
        if result.job_id in self._superseded or (current is not None and current != result.job_id):
            # A superseded launch of this try (the sensor's last poke, the run before a deferral): Airflow
            # must not take its end for the current launch's.
            if result.terminal or event is Event.FREED:
                self._superseded.discard(result.job_id)
                self._revoked.discard(result.job_id)
            log.info("task %s: %s of superseded job %s dropped (current job %s)", key, result.state.value,
                     result.job_id, current)
            return False
        if event is Event.NOTHING:
            if result.pending_reason is not None:  # why the task is still queued, as it changes
                text = mapping.describe(result)
                log.info("task %s: %s", key, text)
                self.log_task_event(event="podq pending", extra=text, ti_key=key)
                self._write_task_log(log_path, [text])
            return False
        if event is Event.FREED:
            log.info("task %s was adopted by another scheduler; its slot is free", key)
            self.running.discard(key)
            self.job_ids.pop(key, None)
            return False
        if event is Event.REVOKED and result.job_id in self._revoked:
            self._revoked.discard(result.job_id)
            return False
        if event is Event.RUNNING:
            if key not in self.running:
                return False
            self.running_state(key, info=result.job_id)
        elif event is Event.SUCCESS:
            self.job_ids.pop(key, None)
            self.success(key, info=result.job_id)
        else:
            text = mapping.describe(result)
            log.warning("task %s: %s", key, text)
            self.job_ids.pop(key, None)
            self.log_task_event(event=f"podq {result.state.value}", extra=text, ti_key=key)
            details = result.failure_details
            if never_ran or (details is not None and details.log_tail):
                # The task log holds nothing of its own (it never started), or its container's last lines.
                self._write_task_log(log_path, mapping.failure_lines(result), level="error")
            self.fail(key, info=text)
        self._awaiting[key].append(result.entry_id)
        return True

    def log_task_event(self, *, event: str, extra: str, ti_key: Any) -> None:
        """Airflow's event-log row, held here until the scheduler loop has saved it.

        Airflow 3.3's scheduler saves ``_task_event_logs`` with ``bulk_save_objects`` over a generator
        that pops each row off the deque, with ``preserve_order=False``: SQLAlchemy sorts the rows'
        instance states, which hold their objects only weakly, so a row nothing else references is
        freed before its insert and goes out as ``INSERT INTO log DEFAULT VALUES`` (a NotNullViolation
        on ``log.event``, every executor event lost). Holding each row until the next ``sync()`` keeps
        it alive through the save, which comes after the heartbeat in the same loop.
        """
        before = len(self._task_event_logs)
        super().log_task_event(event=event, extra=extra, ti_key=ti_key)
        if len(self._task_event_logs) > before:
            self._event_logs_held.append(self._task_event_logs[-1])

    def _release_event_logs(self) -> None:
        """Let go of the event-log rows the scheduler took off the deque (saved, or given up)."""
        if self._event_logs_held:
            waiting = {id(row) for row in self._task_event_logs}
            self._event_logs_held = [row for row in self._event_logs_held if id(row) in waiting]

    def _write_task_log(self, log_path: str | None, lines: list[str], *, level: str = "info") -> None:
        """Append ``lines`` to a try's task log file (where a queued task's log is read: .tasklog)."""
        if self._task_logs is not None and log_path:
            self._task_logs.append(log_path, lines, level=level)

    def get_event_buffer(self, dag_ids=None):
        events = super().get_event_buffer(dag_ids)
        for key in events:
            self._taken.extend(self._awaiting.pop(key, ()))
        return events

    def _ack_taken(self) -> None:
        if self._taken and self.consumer is not None:
            taken, self._taken = self._taken, []
            self.consumer.ack(taken)

    # -- revoke, adopt, logs ---------------------------------------------------------------------

    def _candidate_job_ids(self, ti: TaskInstance, *, own: bool) -> list[str]:
        """The job ids ``ti``'s current launch may have, most likely first.

        Airflow's row names the current launch, whichever scheduler queued it: ``external_executor_id``
        is its job id once Airflow took the queueing executor's QUEUED event; before that it is the
        launch id Airflow pre-assigned, and the job id is derived from it and the queueing scheduler
        (adoption changes ``queued_by_job_id`` only after the event was taken). This executor's own
        record comes last, and only for revoking (``own``): with several schedulers it may hold an
        earlier launch of the same try, which adoption must never take for the current one.
        """
        candidates = [ti.external_executor_id]
        if ti.queued_by_job_id is not None:
            scheduler = mapping.scheduler_id(self.config.scheduler_id_prefix, ti.queued_by_job_id)
            if ti.external_executor_id:
                candidates.append(mapping.job_id_for(scheduler, self._task_key(ti.key, ti.external_executor_id)))
            candidates.append(mapping.job_id_for(scheduler, self._task_key(ti.key)))  # no launch id given
        if own:
            candidates.append(self.job_ids.get(ti.key))
        return list(dict.fromkeys(candidate for candidate in candidates if candidate))

    def _find_job(self, ti: TaskInstance, *, own: bool):
        """(job id, status) of ``ti``'s current launch in podq, or (None, None)."""
        for job_id in self._candidate_job_ids(ti, own=own):
            status = job_status(self.client, job_id)
            if status is not None and status.entry.scheduler_id is not None:
                return job_id, status
        return None, None

    def revoke_task(self, *, ti: TaskInstance) -> None:
        """Remove the task from podq: no pod if none exists yet, else labelled revoked and deleted."""
        self.queued_tasks.pop(ti.key, None)
        self.running.discard(ti.key)
        if self.client is None:
            log.warning("revoke %s: the executor is not started", ti.key)
            return
        try:
            job_id, status = self._find_job(ti, own=True)
            if status is None:
                log.warning("revoke %s: podq has no job for it (tried %s)", ti.key,
                            ", ".join(self._candidate_job_ids(ti, own=True)) or "none")
                return
            self._revoked.add(job_id)
            self.job_ids.pop(ti.key, None)
            self.launches.pop(job_id, None)
            self._log_paths.pop(job_id, None)
            revoke(self.client, job_id=job_id, scheduler_id=status.entry.scheduler_id,
                   reason=f"revoked by Airflow scheduler {self.scheduler_id}")
            log.info("revoke %s: podq job %s", ti.key, job_id)
        except Exception:  # noqa: BLE001 - revoke_task must not raise (BaseExecutor's contract)
            log.exception("revoke %s failed", ti.key)

    def cleanup_stuck_queued_tasks(self, *, tis: list[TaskInstance]) -> list[str]:
        """Airflow 2's stuck-in-queued hook: revoke each task and say which."""
        readable = []
        for ti in tis:
            self.revoke_task(ti=ti)
            readable.append(repr(ti))
        return readable

    def try_adopt_task_instances(self, tis: Sequence[TaskInstance]) -> Sequence[TaskInstance]:
        """Adopt the tasks of dead schedulers through podq's adopt: their pods keep running.

        Returns the task instances podq does not know (never submitted): Airflow resets those.
        """
        if self.client is None:
            return list(tis)
        not_adopted: list[TaskInstance] = []
        owners: dict[str, list[tuple[TaskInstance, str]]] = defaultdict(list)
        for ti in tis:
            try:
                job_id, status = self._find_job(ti, own=False)
            except Exception:  # noqa: BLE001 - unknown is not adoptable
                log.exception("adopt %s: reading its podq job failed", ti.key)
                job_id, status = None, None
            if status is None:
                not_adopted.append(ti)
                continue
            owners[status.entry.scheduler_id].append((ti, job_id))
        for owner, owned in owners.items():
            if owner != self.scheduler_id:
                try:
                    send_control(self.client, ControlRecord(op=ControlOp.ADOPT, scheduler_id=owner,
                                                            new_scheduler_id=self.scheduler_id))
                except Exception:  # noqa: BLE001 - then these cannot be adopted now
                    log.exception("adopt from %s failed; %d task(s) will be reset", owner, len(owned))
                    not_adopted.extend(ti for ti, _ in owned)
                    continue
            for ti, job_id in owned:
                self.running.add(ti.key)
                previous = self.job_ids.get(ti.key)
                if previous is not None and previous != job_id:
                    self._superseded.add(previous)  # this executor's earlier launch of the same try
                self.job_ids[ti.key] = job_id
                self.launches[job_id] = Launch(job_id=job_id, key=ti.key, ti_id=_ti_id(ti),
                                               launch_id=ti.external_executor_id)
            log.info("adopting %d task(s) of scheduler %s", len(owned), owner)
        return not_adopted

    # -- launches Airflow no longer wants ----------------------------------------------------------

    def _check_launches(self) -> None:
        """Every ``stale_launch_check_interval`` seconds (from ``sync()``): the launches Airflow no longer
        wants, then the running tasks whose results went elsewhere (:meth:`_reconcile_running`)."""
        interval = self.config.stale_launch_check_interval
        now = time.monotonic()
        if not interval or now < self._next_launch_check or self.client is None:
            return
        self._next_launch_check = now + interval
        if self.launches:
            self._revoke_unwanted_launches()
        self._reconcile_running(now)

    def _revoke_unwanted_launches(self) -> None:
        """Revoke each launch Airflow no longer waits for whose pod podq has not created yet.

        One metadata-database read for every launch not yet running, then, for each unwanted one, a
        revoke if podq's ledger has it waiting for its create. A launch whose job is not in the ledger
        yet (its submission on the way) is looked at again at the next check; one whose pod exists is
        left to end and report.
        """
        launches = [launch for launch in self.launches.values() if launch.ti_id]
        try:
            rows = self._task_instance_rows([launch.ti_id for launch in launches])
        except Exception:  # noqa: BLE001 - the metadata database away: check again next time
            log.exception("reading task instances for %d launch(es) failed", len(launches))
            return
        for launch in launches:
            if not still_wanted(launch, rows.get(launch.ti_id)):
                self._revoke_unwanted(launch)

    def _reconcile_running(self, now: float) -> None:
        """Free the slot of each running task whose job ended, or moved to another scheduler, in podq's
        ledger without its result reaching this executor within ``RESULT_GRACE_SECONDS``.

        With several schedulers a result can go to another one: an adoption that moved the job after
        Airflow listed the task, or a job that ended while it changed hands. Without this the slot
        would stay taken for good (Airflow's open slots fall to zero, apache/airflow #32928's leak).
        """
        watched = {self.job_ids[key]: key for key in self.running if key in self.job_ids}
        if not watched:
            self._ended_unseen.clear()
            return
        try:
            entries = job_entries(self.client, list(watched))
        except Exception:  # noqa: BLE001 - Redis away: check again next time
            log.exception("reading %d running job(s) from podq failed", len(watched))
            return
        for job_id in list(self._ended_unseen):
            if job_id not in watched:
                del self._ended_unseen[job_id]
        for job_id, key in watched.items():
            entry = entries.get(job_id)
            if entry is None or (entry.state not in _ENDED and entry.scheduler_id == self.scheduler_id):
                self._ended_unseen.pop(job_id, None)
                continue
            if now - self._ended_unseen.setdefault(job_id, now) >= RESULT_GRACE_SECONDS:
                del self._ended_unseen[job_id]
                self._settle_from_ledger(key, job_id, entry)

    def _settle_from_ledger(self, key: TaskInstanceKey, job_id: str, entry: Any) -> None:
        self.job_ids.pop(key, None)
        self._log_paths.pop(job_id, None)
        self._superseded.add(job_id)  # its result, should it still come, is not reported twice
        if entry.state not in _ENDED:
            log.warning("task %s: podq job %s belongs to scheduler %s now; its slot here is free", key, job_id,
                        entry.scheduler_id)
            self.running.discard(key)
        elif entry.terminal_state == "succeeded":
            log.warning("task %s: podq job %s succeeded without its result reaching this scheduler; reported "
                        "from the ledger", key, job_id)
            self.success(key, info=job_id)
        elif entry.state is LedgerState.REVOKED and job_id in self._revoked:
            self._revoked.discard(job_id)
            self.running.discard(key)
        else:
            text = f"podq job {job_id} ended {entry.terminal_state or entry.state.value} (from podq's ledger: " \
                   f"its result did not reach this scheduler)"
            log.warning("task %s: %s", key, text)
            self.fail(key, info=text)

    def _revoke_unwanted(self, launch: Launch) -> None:
        try:
            status = job_status(self.client, launch.job_id)
        except Exception:  # noqa: BLE001 - Redis away: check again next time
            log.exception("task %s: reading podq job %s failed", launch.key, launch.job_id)
            return
        if status is None:
            return  # not admitted yet: the next check revokes it
        entry = status.entry
        if entry.state in CREATABLE_STATES and entry.scheduler_id == self.scheduler_id:
            self._revoked.add(launch.job_id)
            try:
                revoke(self.client, job_id=launch.job_id, scheduler_id=entry.scheduler_id,
                       reason=f"Airflow no longer wants launch {launch.launch_id} of {launch.key}")
            except Exception:  # noqa: BLE001 - Redis away: check again next time
                self._revoked.discard(launch.job_id)
                log.exception("task %s: revoking unwanted job %s failed", launch.key, launch.job_id)
                return
            log.info("task %s: Airflow no longer wants launch %s; podq job %s (%s) revoked", launch.key,
                     launch.launch_id, launch.job_id, entry.state.value)
            if self.job_ids.get(launch.key) == launch.job_id:
                # Airflow moved past the task instance itself: no event will come, the slot is free.
                self.job_ids.pop(launch.key, None)
                self.running.discard(launch.key)
        self.launches.pop(launch.job_id, None)

    def get_task_log(self, ti: TaskInstance, try_number: int) -> tuple[list[str], list[str]]:
        if self._logs is None:
            return [], [f"podq executor: pod logs are not read through the Kubernetes API "
                        f"([{SECTION}] logs_from_kubernetes is false; the scheduler holds no API access)"]
        key = mapping.task_key(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, try_number=try_number,
                               map_index=ti.map_index)
        namespace = self.config.route(ti.queue).namespace or "default"
        return self._logs.read(key, namespace=namespace)


def _task_log_files(conf: Any) -> TaskLogFiles | None:
    """The task log files under ``[logging] base_log_folder`` (None when it is not set)."""
    folder = conf.get("logging", "base_log_folder", fallback=None)
    return TaskLogFiles(folder) if folder else None


def _ti_id(ti: Any) -> str | None:
    value = getattr(ti, "id", None)
    return str(value) if value else None


def _task_instance_rows(ti_ids: list[str]) -> dict[str, TaskInstanceRow]:
    """The metadata database's view of these task instances (by id), read in one session."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    rows: dict[str, TaskInstanceRow] = {}
    with create_session() as session:
        for start in range(0, len(ti_ids), 500):
            query = select(TaskInstance.id, TaskInstance.state, TaskInstance.try_number,
                           TaskInstance.external_executor_id).where(TaskInstance.id.in_(ti_ids[start:start + 500]))
            for ti_id, state, try_number, external_executor_id in session.execute(query):
                rows[str(ti_id)] = TaskInstanceRow(state=getattr(state, "value", state), try_number=try_number,
                                                   external_executor_id=external_executor_id)
    return rows
