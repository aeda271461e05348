"""Chaos: the API server's capacity changes mid-storm (kubesim's API Priority and Fairness model).

Jobs stream in from two schedulers (one a 400-job burst, one a steady trickle) while kubesim completes
40 mutating requests a second with short queues (so creates meet real 429s with Retry-After, not only
latency); mid-storm the capacity drops 10× to 4/s, then rises to 80/s. podq's create budget follows
(it must cut on the push-back, every worker pauses for the Retry-After) and its waiting lines hold the
backlog. The audit: every job has exactly one pod and one terminal result with the expected state:
0 lost, 0 created twice, 0 stuck.
"""
from __future__ import annotations

import time

from podq.broker.client.results import ResultsConsumer
from podq.broker.store.connection import connect
from podq.broker.store.ratelimit import budget_states
from podq.kubesim.admin import Admin
from tests.support import wait_for
from tests.support.system import Collector, Producer, assert_exactly_once, chaos_stack, make_jobs, new_scheduler


def test_capacity_changes_mid_storm_lose_nothing_and_create_nothing_twice(tmp_path):
    with chaos_stack(tmp_path, workers=2, concurrency=4, PODQ_WORKER_CREATE_RATE_START="40") as stack:
        admin = Admin(stack.kubesim_url)
        admin.set_limit(rate=40, queue_length=2, hand_size=2)
        client = connect(stack.redis_url, block_ms=200)
        burst_id, trickle_id = new_scheduler("burst"), new_scheduler("trickle")
        burst_jobs, burst_expected = make_jobs(burst_id, 400, run_seconds=0.2)
        trickle_jobs, trickle_expected = make_jobs(trickle_id, 60, run_seconds=0.2)
        burst = Producer(stack.redis_url, burst_jobs, batch=200, interval=0)
        trickle = Producer(stack.redis_url, trickle_jobs, batch=2, interval=0.25)
        burst_reader = Collector(ResultsConsumer(client, scheduler_id=burst_id, consumer="s-1"))
        trickle_reader = Collector(ResultsConsumer(client, scheduler_id=trickle_id, consumer="s-1"))
        burst.start()
        trickle.start()
        finished: dict[str, float] = {}
        trickle.wait_sent(20, timeout=60)
        admin.set_limit(rate=4)                   # the capacity drops tenfold mid-storm
        dropped = time.monotonic()
        wait_for(lambda: budget_states(client).get("default") is not None
                 and budget_states(client)["default"].cut_at > 0, timeout=60,
                 message="the budget cut on the API server's push-back")
        burst_reader.read_for(set(burst_expected), max(0.0, dropped + 5 - time.monotonic()), finished)
        admin.set_limit(rate=80)                  # and rises past where it was
        burst.finish(timeout=60)
        trickle.finish(timeout=120)
        limit = admin.limit()
        assert limit["rejected"] + limit["timedOut"] > 0, f"the storm met no 429 at all: {limit}"
        assert_exactly_once(stack, client, burst_jobs, burst_expected, burst_reader, timeout=240, others=trickle_jobs)
        assert_exactly_once(stack, client, trickle_jobs, trickle_expected, trickle_reader, timeout=120,
                            others=burst_jobs)
        client.close()
