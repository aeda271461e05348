"""Intake's read-ahead lines: every scheduler's arrivals admitted in turns, each in arrival order."""
from podq.broker.intake.arrivals import Arrivals
from podq.shared.records import KubernetesJob, TaskKey


def entries(scheduler: str, count: int) -> list[tuple[str, str, dict]]:
    return [(scheduler, f"{scheduler}-{index}", {}) for index in range(count)]


def fill(arrivals: Arrivals, *groups: list) -> None:
    for group in groups:
        for scheduler, entry_id, fields in group:
            arrivals.add(scheduler, (entry_id, fields))


def test_a_burst_does_not_hold_a_later_scheduler_behind_it():
    arrivals = Arrivals(limit=100_000)
    fill(arrivals, entries("a", 20_000), entries("b", 1))
    taken = [entry_id for entry_id, _ in arrivals.take(200)]
    assert "b-0" in taken
    assert taken.count("b-0") == 1 and len(taken) == 200
    assert [entry_id for entry_id in taken if entry_id.startswith("a-")] == [f"a-{index}" for index in range(199)]


def test_shares_are_even_and_a_short_line_leaves_the_rest_to_the_others():
    arrivals = Arrivals(limit=1000)
    fill(arrivals, entries("a", 300), entries("b", 300), entries("c", 10))
    taken = [entry_id.split("-")[0] for entry_id, _ in arrivals.take(100)]
    assert taken.count("c") == 10
    assert taken.count("a") == 45 and taken.count("b") == 45
    assert len(arrivals) == 610 - 100


def test_alone_a_scheduler_gets_the_whole_batch_in_arrival_order():
    arrivals = Arrivals(limit=1000)
    fill(arrivals, entries("a", 50))
    assert [entry_id for entry_id, _ in arrivals.take(20)] == [f"a-{index}" for index in range(20)]
    assert [entry_id for entry_id, _ in arrivals.take(100)] == [f"a-{index}" for index in range(20, 50)]
    assert len(arrivals) == 0 and not arrivals.take(10)


def test_room_counts_what_is_held_and_an_entry_is_held_once():
    arrivals = Arrivals(limit=3)
    assert arrivals.add("a", ("1-0", {})) and not arrivals.add("b", ("1-0", {}))
    assert arrivals.holds("1-0") and arrivals.room == 2
    arrivals.take(1)
    assert not arrivals.holds("1-0") and arrivals.room == 3


def test_the_scheduler_of_a_record_is_read_cheaply_and_garbage_names_none():
    job = KubernetesJob.new(scheduler_id="sched-7", key=TaskKey(dag_id="d", task_id="t", run_id="r"), command=["true"])
    assert KubernetesJob.scheduler_of(job.encode()) == "sched-7"
    assert KubernetesJob.scheduler_of(b"\xc1not msgpack") is None
    assert KubernetesJob.scheduler_of(b"\x93\x01\x02\x03") is None   # an array, not a map
    assert KubernetesJob.scheduler_of(None) is None
