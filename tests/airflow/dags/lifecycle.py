"""The DAGs of the task-lifecycle matrix (tests/airflow/test_lifecycle.py): the same file for both executors.

Each DAG is one way an Airflow task waits or ends: a sensor in reschedule and in poke mode, the standard
provider's deferrable sensor, a custom trigger and a task that defers twice (the triggerer runs them), a
deferral that times out, a task cleared while deferred, task and DAG callbacks, a pool of one slot with
priority weights.
A reschedule or a resume is a new launch of the same try, so a new pod; every launch is counted in a file
under the task's AIRFLOW_HOME so the test can compare pods created with launches made.
"""
from __future__ import annotations

import datetime
import os
from pathlib import Path

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator, dag, get_current_context, task

from lifecycle_triggers import CountdownTrigger

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
COMMON = {"schedule": None, "start_date": START, "catchup": False, "max_active_tasks": 64}
POKES_TO_SUCCESS = 3


def count_launch() -> int:
    """Add one to this task's counter in this run (``launches/<run_id>/<dag_id>.<task_id>``); the count."""
    context = get_current_context()
    ti = context["ti"]
    folder = Path(os.environ["AIRFLOW_HOME"]) / "launches" / context["run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ti.dag_id}.{ti.task_id}"
    with open(path, "a") as out:
        out.write(f"{ti.try_number}\n")
    return len(path.read_text().splitlines())


def third_poke() -> bool:
    return count_launch() >= POKES_TO_SUCCESS


@dag(dag_id="life_reschedule", **COMMON)
def life_reschedule():
    # Each poke is its own launch: the sensor is queued again under the same try after each one.
    wait = PythonSensor(task_id="wait", python_callable=third_poke, mode="reschedule",
                        poke_interval=2, timeout=600)

    @task
    def after() -> str:
        return "sensed"

    wait >> after()


@dag(dag_id="life_poke", **COMMON)
def life_poke():
    # One launch: the sensor pokes inside its pod.
    PythonSensor(task_id="wait", python_callable=third_poke, mode="poke", poke_interval=1,
                 timeout=600)


@dag(dag_id="life_deferrable_sensor", **COMMON)
def life_deferrable_sensor():
    # The standard provider's deferrable date-time sensor: defers to the triggerer, resumes (a second
    # launch) when 40 s after the run's start have passed. DateTimeSensorAsync defers even when that time
    # has passed (its trigger then fires at once); TimeDeltaSensor(deferrable=True) ends without deferring
    # when its first launch starts late, as it did under load, which made the launch count timing's.
    waited = DateTimeSensorAsync(task_id="wait",
                                 target_time="{{ (dag_run.run_after + macros.timedelta(seconds=40)).isoformat() }}")

    @task
    def after() -> int:
        return count_launch()

    waited >> after()


class DeferTwice(BaseOperator):
    """Defers to the standard TimeDeltaTrigger, then to a custom trigger, then ends: three launches."""

    def execute(self, context):
        count_launch()
        self.defer(trigger=TimeDeltaTrigger(datetime.timedelta(seconds=2)), method_name="after_first")

    def after_first(self, context, event=None):
        count_launch()
        self.defer(trigger=CountdownTrigger(seconds=2, payload="second"), method_name="after_second")

    def after_second(self, context, event=None):
        count_launch()
        if event != {"payload": "second"}:
            raise RuntimeError(f"the custom trigger's event is {event!r}")
        return "deferred twice"


@dag(dag_id="life_defer_twice", **COMMON)
def life_defer_twice():
    DeferTwice(task_id="twice")


class DeferTooLong(BaseOperator):
    """Defers for 300 s with a 4 s trigger timeout: Airflow launches it once more to fail it."""

    def execute(self, context):
        count_launch()
        self.defer(trigger=CountdownTrigger(seconds=300, payload="never"), method_name="resumed",
                   timeout=datetime.timedelta(seconds=4))

    def resumed(self, context, event=None):
        raise RuntimeError("the trigger was to time out, not to fire")


@dag(dag_id="life_defer_timeout", **COMMON)
def life_defer_timeout():
    DeferTooLong(task_id="deferred", retries=0, execution_timeout=datetime.timedelta(seconds=120))


class DeferUntilCleared(BaseOperator):
    """Try 1 defers for 300 s (the test clears it meanwhile: the trigger's on_kill marks
    ``callbacks/<run_id>/trigger_on_kill`` in the triggerer); a later try ends at once."""

    def execute(self, context):
        count_launch()
        if context["ti"].try_number < 2:
            self.defer(trigger=CountdownTrigger(seconds=300, payload="cleared",
                                                kill_mark=f"callbacks/{context['run_id']}/trigger_on_kill"),
                       method_name="resumed")
        return "rerun after the clear"

    def resumed(self, context, event=None):
        raise RuntimeError("the test clears this task while it is deferred")


@dag(dag_id="life_defer_clear", **COMMON)
def life_defer_clear():
    DeferUntilCleared(task_id="deferred", retries=0)


class DeferPastExecutionTimeout(BaseOperator):
    """``execution_timeout`` of 3 s, deferred for 12 s without a trigger timeout: Airflow 3.3 times only
    the task's runs, not its deferral (the task runner's "handle timeout in case of deferral" is a TODO and
    the Execution API's defer sets no trigger timeout from it), so the resume runs and the task succeeds."""

    def execute(self, context):
        count_launch()
        self.defer(trigger=CountdownTrigger(seconds=12, payload="past the timeout"), method_name="resumed")

    def resumed(self, context, event=None):
        count_launch()
        return event


@dag(dag_id="life_defer_execution_timeout", **COMMON)
def life_defer_execution_timeout():
    DeferPastExecutionTimeout(task_id="deferred", retries=0, execution_timeout=datetime.timedelta(seconds=3))


def mark(name: str):
    """A callback writing ``callbacks/<run_id>/<name>`` under the AIRFLOW_HOME of whoever runs it."""
    def callback(context):
        folder = Path(os.environ["AIRFLOW_HOME"]) / "callbacks" / context["run_id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    return callback


@dag(dag_id="life_callbacks", on_failure_callback=mark("dag_failure"), **COMMON)
def life_callbacks():
    @task(retries=0, on_failure_callback=mark("task_failure"))
    def fails() -> None:
        raise RuntimeError("fails on purpose: its callbacks run")

    @task(on_success_callback=mark("task_success"))
    def succeeds() -> str:
        return "ok"

    fails()
    succeeds()


@dag(dag_id="life_pool", **COMMON)
def life_pool():
    # One pool slot, four tasks ready at once: they run one at a time, highest priority_weight first.
    @task(pool="life_pool", weight_rule="absolute")
    def weighted() -> str:
        return "ran"

    for weight in (1, 2, 3, 4):
        weighted.override(task_id=f"weight_{weight}", priority_weight=weight)()


life_reschedule()
life_poke()
life_deferrable_sensor()
life_defer_twice()
life_defer_timeout()
life_defer_clear()
life_defer_execution_timeout()
life_callbacks()
life_pool()


# -- for the scheduler SIGKILL while a task waits (slow tests) --------------------------------------

def fifth_poke() -> bool:
    return count_launch() >= 5


@dag(dag_id="life_kill_reschedule", **COMMON)
def life_kill_reschedule():
    # Five launches 5 s apart: the test kills the scheduler while the sensor waits between two.
    PythonSensor(task_id="wait", python_callable=fifth_poke, mode="reschedule",
                 poke_interval=5, timeout=900)


class DeferLong(BaseOperator):
    """Defers once for 25 s to the custom trigger (the test kills the scheduler meanwhile), then ends."""

    def execute(self, context):
        count_launch()
        self.defer(trigger=CountdownTrigger(seconds=25, payload="late"), method_name="resumed")

    def resumed(self, context, event=None):
        count_launch()
        return event


@dag(dag_id="life_kill_defer", **COMMON)
def life_kill_defer():
    DeferLong(task_id="deferred")




@dag(dag_id="life_stale", **COMMON)
def life_stale():
    # The test holds this task's create back (429s), clears it while it is queued, then lets creates
    # through: the first try's launch is stale (apache/airflow #69760) and must never get a pod.
    @task(retries=0)
    def held() -> int:
        return get_current_context()["ti"].try_number

    held()


life_kill_reschedule()
life_kill_defer()
life_stale()
