"""The Python client API reads the same PODQ_REDIS_* settings as the services, unless given its own.

A producer calling ``connect(url)`` and ``submit`` gets the ``WAIT`` that docs/operations.md
promises when ``PODQ_REDIS_WAIT_REPLICAS`` is set (counted in the server's command statistics),
and the TLS settings of the environment.
"""
from __future__ import annotations

import pytest

from podq.broker.client.submit import submit, submit_many
from podq.broker.store.connection import connect
from podq.shared.errors import SettingsError
from podq.shared.records import KubernetesJob, TaskKey
from podq.shared.settings import RedisSettings


def job(n: int) -> KubernetesJob:
    return KubernetesJob.new(scheduler_id="producer", key=TaskKey(dag_id="d", task_id=f"t{n}", run_id="r"))


def waits(client) -> int:
    return client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)


@pytest.fixture
def wait_for_a_replica(monkeypatch):
    # The session server has no replica: each WAIT answers 0 after its 10 ms.
    monkeypatch.setenv("PODQ_REDIS_WAIT_REPLICAS", "1")
    monkeypatch.setenv("PODQ_REDIS_WAIT_TIMEOUT", "0.01")


def test_submit_and_submit_many_wait_for_the_replicas_the_environment_asks_for(redis_url, wait_for_a_replica):
    client = connect(redis_url)
    assert client.podq_wait == (1, 10)
    client.config_resetstat()
    submit(client, job(1))
    submit_many(client, [job(2), job(3)])
    assert waits(client) == 2
    client.close()


def test_explicit_settings_replace_the_environment(redis_url, wait_for_a_replica):
    client = connect(redis_url, settings=RedisSettings())
    client.config_resetstat()
    submit(client, job(1))
    assert waits(client) == 0
    client.close()


def test_without_a_url_connect_takes_podq_redis_url(redis_url, monkeypatch):
    monkeypatch.setenv("PODQ_REDIS_URL", redis_url)
    client = connect()
    assert client.ping()
    client.close()
    monkeypatch.delenv("PODQ_REDIS_URL")
    with pytest.raises(SettingsError, match="PODQ_REDIS_URL is unset"):
        connect()


def test_the_tls_settings_of_the_environment_apply(tmp_path, monkeypatch):
    monkeypatch.setenv("PODQ_REDIS_TLS_CA_FILE", str(tmp_path / "missing-ca.pem"))
    with pytest.raises(SettingsError, match="PODQ_REDIS_TLS_CA_FILE: cannot read"):
        connect("rediss://127.0.0.1:1/0")


def test_writes_short_of_replicas_are_logged_once_per_interval_with_their_count(redis_url, wait_for_a_replica,
                                                                               caplog):
    client = connect(redis_url)
    for n in range(3):
        submit(client, job(n))
    lines = [r.getMessage() for r in caplog.records if "replicas acknowledged" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("only 0 of 1 replicas acknowledged writes within 10 ms")
    client.podq_wait_warned = float("-inf")   # the interval has passed
    submit(client, job(4))
    lines = [r.getMessage() for r in caplog.records if "replicas acknowledged" in r.getMessage()]
    assert lines[-1].endswith("(3 writes short of replicas since the last such line)")
    client.close()
