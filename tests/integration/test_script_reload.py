"""Every script call survives a server that lost its script cache (restart, failover, SCRIPT FLUSH).

The server's cache is emptied with ``SCRIPT FLUSH`` from another connection at the moment a
pipeline is sent (after anything a pipeline checks or loads first), which is what a failover
does to a call in flight: the client reconnects to the promoted replica, which never loaded
podq's scripts, and sends the call again. Each kind of call is covered
for every script in ``scripts.NAMES``: on the client, queued on a pipeline, inside a
transaction; then the verbs that pipeline a script with other commands and a ``WAIT``.
A real Sentinel failover with these calls in flight is tests/integration/test_redis_sentinel.py.
"""
from __future__ import annotations

import pytest
from redis.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError

from podq.broker.store import keys
from podq.broker.store.connection import connect
from podq.broker.store.ledger import Ledger
from podq.broker.store.publish import Publisher
from podq.broker.store.scripts import NAMES, scripts_for
from podq.shared.naming import pod_name_for
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.states import Source, State

# Enough keys for any script (they read KEYS[1..6] at most); the arguments are left out, so a
# script may stop with its own error: that it ran at all is what is checked.
DUMMY_KEYS = [f"reload-test:{n}" for n in range(1, 7)]


@pytest.fixture
def flusher(redis_url, monkeypatch):
    """``flusher()`` arms a SCRIPT FLUSH for the next time a pipeline (or transaction) is sent."""
    other = connect(redis_url)
    armed = []

    def wrap(send):
        def sending(self, connection, commands, raise_on_error):
            if armed:
                armed.clear()
                other.script_flush()
            return send(self, connection, commands, raise_on_error)
        return sending

    monkeypatch.setattr(Pipeline, "_execute_pipeline", wrap(Pipeline._execute_pipeline))
    monkeypatch.setattr(Pipeline, "_execute_transaction", wrap(Pipeline._execute_transaction))
    yield lambda: armed.append(True)
    other.close()


def ran(reply) -> bool:
    """The script ran (its reply, or an error of its own), rather than being refused as unknown."""
    return not isinstance(reply, NoScriptError) and not (isinstance(reply, ResponseError)
                                                         and "NOSCRIPT" in str(reply))


@pytest.mark.parametrize("name", NAMES)
def test_a_call_on_the_client_loads_the_script_again(redis_client, flusher, name):
    script = getattr(scripts_for(redis_client), name)
    redis_client.script_flush()
    try:
        reply = script(keys=DUMMY_KEYS)
    except ResponseError as exc:
        reply = exc
    assert ran(reply), reply
    assert redis_client.script_exists(script.sha) == [True]


@pytest.mark.parametrize("name", NAMES)
def test_a_pipelined_call_is_sent_again_after_loading_the_script(redis_client, flusher, name):
    script = getattr(scripts_for(redis_client), name)
    pipe = redis_client.pipeline(transaction=False)
    pipe.incr("reload-test:before")
    script(keys=DUMMY_KEYS, client=pipe)
    pipe.incr("reload-test:after")
    flusher()
    before, reply, after = pipe.execute(raise_on_error=False)
    assert ran(reply), reply
    assert redis_client.script_exists(script.sha) == [True]
    # Only the script was sent again: the other commands ran once.
    assert (before, after) == (1, 1)
    assert redis_client.mget("reload-test:before", "reload-test:after") == [b"1", b"1"]


@pytest.mark.parametrize("name", NAMES)
def test_a_call_inside_a_transaction_carries_its_text(redis_client, flusher, name):
    script = getattr(scripts_for(redis_client), name)
    pipe = redis_client.pipeline(transaction=True)
    pipe.incr("reload-test:counter")
    script(keys=DUMMY_KEYS, client=pipe)
    flusher()
    counter, reply = pipe.execute(raise_on_error=False)
    assert ran(reply), reply
    assert counter == 1


def job(n: int) -> KubernetesJob:
    return KubernetesJob.new(scheduler_id="reload", key=TaskKey(dag_id="d", task_id=f"t{n}", run_id="r"))


def waits(client) -> int:
    return client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)


def test_durable_ledger_calls_get_their_replies_and_their_wait(redis_url, flusher):
    client = connect(redis_url)
    client.podq_wait = (1, 10)   # no replica: WAIT answers 0 after 10 ms
    client.config_resetstat()
    ledger = Ledger(client)
    jobs = [job(n) for n in range(3)]
    flusher()
    assert ledger.accept_many([(j, pod_name_for(j.job_id, j.key)) for j in jobs]) == ["new"] * 3
    flusher()
    ledger.mark_dispatched([j.job_id for j in jobs])
    assert {client.hget(keys.job_key(j.job_id), "state") for j in jobs} == {b"dispatched"}
    assert client.zcard(keys.INFLIGHT_ZSET) == 3
    flusher()
    assert ledger.mark_created_many([(j.job_id, f"uid-{n}") for n, j in enumerate(jobs)]) == [(True, "created")] * 3
    flusher()
    watch = KubernetesWatch.build(job_id=jobs[0].job_id, scheduler_id="reload", key=jobs[0].key,
                                  source=Source.WATCHER, state=State.SUCCEEDED)
    [entry] = Publisher(client).publish([watch])
    assert entry
    assert client.xlen(keys.results_stream("reload")) == 1
    # Each of the 4 durable calls sent its WAIT twice: after the first writes, and after the
    # script sent again, so that WAIT covers the writes the call returns for.
    assert waits(client) == 8
    client.close()


def test_scripts_refuse_a_client_whose_pipelines_would_not_reload_them(redis_server):
    import redis

    plain = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with pytest.raises(TypeError, match=r"podq's scripts need a client from connect\(\)"):
        scripts_for(plain)
    plain.close()


def test_a_pipelined_script_call_is_one_round_trip(redis_client):
    """No SCRIPT EXISTS ahead of each pipeline (redis-py's own pipeline sends one every time): the
    script is loaded only when the server answers NOSCRIPT."""
    ledger = Ledger(redis_client)
    ledger.accept_many([(job(0), pod_name_for(job(0).job_id, job(0).key))])   # loads accept.lua once
    redis_client.config_resetstat()
    for n in range(1, 6):
        ledger.accept_many([(job(n), pod_name_for(job(n).job_id, job(n).key))])
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 5
    assert "cmdstat_script|exists" not in stats and "cmdstat_script|load" not in stats
