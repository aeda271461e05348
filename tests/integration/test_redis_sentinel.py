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


def _script_calls(client):
    """Per kind of script call podq makes, a function making one such call on a fresh job."""
    from podq.broker.store import keys
    from podq.broker.store.ledger import Lease, Ledger
    from podq.broker.store.publish import Publisher
    from podq.broker.store.scripts import scripts_for
    from podq.shared.naming import pod_name_for
    from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
    from podq.shared.states import LedgerState, Source, State

    ledger, publisher, counter = Ledger(client), Publisher(client), iter(range(10**9))

    def accepted(kind: str) -> KubernetesJob:
        job = KubernetesJob.new(scheduler_id="failover", key=TaskKey(dag_id=kind, task_id=f"t{next(counter)}",
                                                                     run_id="r"))
        assert ledger.accept_many([(job, pod_name_for(job.job_id, job.key))])[0] in ("new", "accepted")
        return job

    def pipelined() -> None:      # accept.lua then WAIT, in one pipeline (intake's ledger call)
        accepted("pipelined")

    def direct() -> None:         # claim.lua on the client (a worker's claim)
        job = accepted("direct")
        ledger.claim_jobs([job.job_id], Lease(token="t", seconds=30, grace=5))

    def published() -> None:      # publish.lua then WAIT (the watcher's publish call)
        job = accepted("published")
        publisher.publish([KubernetesWatch.build(job_id=job.job_id, scheduler_id="failover", key=job.key,
                                                 source=Source.WATCHER, state=State.RUNNING)])

    def transaction() -> None:    # a script inside MULTI/EXEC
        job = accepted("transaction")
        pipe = client.pipeline(transaction=True)
        scripts_for(client).transition(keys=[keys.INFLIGHT_ZSET, keys.job_key(job.job_id)],
                                       args=[LedgerState.ACCEPTED.value, LedgerState.DISPATCHED.value, "0"],
                                       client=pipe)
        pipe.execute()

    return {"pipelined": pipelined, "direct": direct, "published": published, "transaction": transaction}


def test_every_kind_of_script_call_in_flight_at_a_failover_ends_on_the_promoted_replica(tmp_path):
    """The promoted replica never loaded podq's scripts: each call in flight gets NOSCRIPT there
    and must load the script and go on (broker/store/scripts.py), never fail."""
    from podq.shared.settings import RedisSettings

    with SentinelCluster(tmp_path) as cluster:
        # WAIT for the replica, as PODQ_REDIS_WAIT_REPLICAS=1 does (short: after the kill there is none).
        client = connect(cluster.url, settings=RedisSettings(wait_replicas=1, wait_timeout=0.2))
        calls = _script_calls(client)
        stop = threading.Event()
        errors: list[str] = []
        done: dict[str, list[tuple[float, float]]] = {kind: [] for kind in calls}

        def caller(kind: str) -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    calls[kind]()
                except Exception as exc:  # noqa: BLE001 - recorded, the assertion names it
                    errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                    return
                done[kind].append((started, time.monotonic()))

        threads = [threading.Thread(target=caller, args=(kind,), daemon=True) for kind in calls]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: errors or all(done.values()), timeout=30, message="every kind of call made")
            old = cluster.kill_primary()
            killed = time.monotonic()
            cluster.wait_promoted(old)
            wait_for(lambda: errors or all(any(start > killed for start, _ in made) for made in done.values()),
                     timeout=90, message="every kind of call made on the promoted replica")
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
            client.close()
        assert errors == []
        spanning = {kind: any(start < killed < end for start, end in made) for kind, made in done.items()}
        assert any(spanning.values()), "no call was in flight at the kill (the test did not test anything)"
