"""A client from ``connect(redis+sentinel://…)`` follows a failover with the calls it has in flight.

A primary, a replica and three Sentinels (tests/support/sentinel.py); four threads keep
sending pipelined writes, as podq's services do, while the primary is SIGKILLed. Every
call must end with the promoted replica: none may fail. (With redis-py 8.1's own Sentinel
connection, a call in flight at the kill retried the dead primary's address until its
retries ran out, ~25 s, and raised ConnectionError; broker/store/connection.py's
``_PrimaryConnection`` asks the Sentinels again at every reconnect.)
"""
from __future__ import annotations

import threading
import time

from podq.broker.store.connection import connect
from tests.support import wait_for
from tests.support.sentinel import SentinelCluster

THREADS = 4


def test_calls_in_flight_at_a_failover_end_on_the_promoted_replica(tmp_path):
    with SentinelCluster(tmp_path) as cluster:
        client = connect(cluster.url)
        stop = threading.Event()
        errors: list[str] = []
        # Per thread: monotonic times its calls started and ended successfully.
        done: list[list[tuple[float, float]]] = [[] for _ in range(THREADS)]

        def writer(index: int) -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    pipe = client.pipeline(transaction=True)
                    pipe.incr(f"failover-test:{index}")
                    pipe.get(f"failover-test:{index}")
                    pipe.execute()
                except Exception as exc:  # noqa: BLE001 - recorded, the assertion names it
                    errors.append(f"thread {index}: {type(exc).__name__}: {exc}")
                    return
                done[index].append((started, time.monotonic()))

        threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: all(done), timeout=30, message="every thread writing")
            old = cluster.kill_primary()
            killed = time.monotonic()
            cluster.wait_promoted(old)
            # Every thread finishes a call that it started before the kill or during the failover,
            # and then one started after it: its in-flight call came back, and it goes on.
            wait_for(lambda: errors or all(any(start > killed for start, _ in calls) for calls in done),
                     timeout=90, message="every thread writing to the promoted replica")
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
            client.close()
        assert errors == []
        spanning = [next((end for start, end in calls if start < killed < end), None) for calls in done]
        assert any(spanning), "no call was in flight at the kill (the test did not test anything)"
