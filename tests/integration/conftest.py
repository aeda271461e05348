"""Fixtures of the kubesim-facing integration tests: a fresh server and the official client on it."""
from __future__ import annotations

from typing import Iterator

import pytest
from kubernetes import client

from podq.kubesim.server import KubeSim
from podq.kubesim.testing import running_kubesim
from tests.support import core_v1


@pytest.fixture
def sim() -> Iterator[KubeSim]:
    with running_kubesim() as server:
        yield server


@pytest.fixture
def v1(sim: KubeSim) -> Iterator[client.CoreV1Api]:
    with core_v1(sim.kubeconfig) as api:
        yield api
