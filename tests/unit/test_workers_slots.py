"""A worker process's create slots and the Celery threads that keep them busy (pure arithmetic on settings)."""
from __future__ import annotations

import pytest

from podq.shared.errors import SettingsError
from podq.shared.settings import load_settings
from podq.workers.runtime import creates_in_flight, message_threads


def test_by_default_64_slots_and_enough_messages_held_to_fill_them_twice():
    settings = load_settings({})
    assert creates_in_flight(settings) == 64 and settings.intake.jobs_per_message == 32
    assert message_threads(settings) == 4   # 4 messages × 32 jobs = 2 × 64 slots


@pytest.mark.parametrize("slots, per_message, threads", [(64, 8, 16), (64, 1, 128), (10, 32, 2), (100, 32, 7)])
def test_threads_follow_the_slots_and_the_message_size(slots, per_message, threads):
    settings = load_settings({"PODQ_WORKER_CREATES_IN_FLIGHT": str(slots),
                              "PODQ_INTAKE_JOBS_PER_MESSAGE": str(per_message)})
    assert message_threads(settings) == threads


def test_an_explicit_thread_count_wins():
    assert message_threads(load_settings({"PODQ_WORKER_CONCURRENCY": "3"})) == 3


@pytest.mark.parametrize("name, value", [("PODQ_WORKER_CREATES_IN_FLIGHT", "0"), ("PODQ_WORKER_CONCURRENCY", "-1")])
def test_impossible_counts_are_refused_by_name(name, value):
    settings = load_settings({name: value})
    with pytest.raises(SettingsError, match=name):
        message_threads(settings)
