"""kubesim's Kubernetes Events: equal events are counted again, the log is bounded, and expiring the oldest
costs one lookup, not a pass over every kept event (a full log expires one per new event)."""
from __future__ import annotations

from podq.kubesim.events import EventLog
from podq.kubesim.history import ADDED, DELETED, MODIFIED


def record(log: EventLog, pod: str, reason: str = "Scheduled") -> dict:
    return log.record(namespace="default", pod=pod, uid=f"uid-{pod}", type_="Normal", reason=reason,
                      message=f"{reason} {pod}")


def test_an_equal_event_is_counted_again_until_it_expires_then_starts_anew():
    log = EventLog(size=2)
    first = record(log, "a")
    again = record(log, "a")
    assert again["metadata"]["name"] == first["metadata"]["name"] and again["count"] == 2
    record(log, "b")
    record(log, "c")                      # the log keeps 2: a's event expires
    assert [event["involvedObject"]["name"] for event in log.events.values()] == ["b", "c"]
    kinds = [(event.kind, event.new["involvedObject"]["name"]) for event in log.history.since(0)]
    assert kinds == [(ADDED, "a"), (MODIFIED, "a"), (ADDED, "b"), (ADDED, "c"), (DELETED, "a")]
    anew = record(log, "a")               # not counted onto the expired one
    assert anew["count"] == 1 and anew["metadata"]["name"] != first["metadata"]["name"]
    assert len(log.events) == 2 and len(log._same) == 2 and len(log._key_of) == 2


def test_a_full_log_stays_bounded_in_every_index():
    log = EventLog(size=100)
    for index in range(1_000):
        record(log, f"pod-{index}")
        record(log, f"pod-{index}", reason="Pulled")
    assert len(log.events) == len(log._same) == len(log._key_of) == 100
    assert all(log.events[name]["involvedObject"]["name"].startswith("pod-9") for name in log._key_of)
