"""Fixtures of the integration tests: a fresh kubesim with the official client on it, and podq workers."""
from __future__ import annotations

from typing import Iterator

import pytest
from kubernetes import client

from podq.kubesim.server import KubeSim
from podq.kubesim.testing import running_kubesim
from tests.support import core_v1
# pytest-celery's app fixture with podq's configuration, started as an in-process worker (see there).
from tests.support.workers import celery_worker_parameters, celery_worker_pool, podq_worker  # noqa: F401


@pytest.fixture
def sim() -> Iterator[KubeSim]:
    with running_kubesim() as server:
        yield server


@pytest.fixture
def v1(sim: KubeSim) -> Iterator[client.CoreV1Api]:
    with core_v1(sim.kubeconfig) as api:
        yield api
