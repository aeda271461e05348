"""GET /healthz: each running service answers from its own state, and a Redis blip restarts nothing.

The Kubernetes manifests probe it (deploy/kubernetes/base): no new interpreter per probe, no Redis call.
"""
from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from podq.kubesim.admin import Admin
from podq.shared.settings import load_settings
from podq.stack import Stack, StackOptions
from tests.support import wait_for

BLIP_SECONDS = 8.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    options = StackOptions(workers=1, data_dir=str(tmp_path_factory.mktemp("stack")))
    with Stack(load_settings({}), options) as running:
        wait_for(lambda: Admin(running.kubesim_url).stats()["watches"] >= 1, timeout=60,
                 message="the watcher watching kubesim")
        yield running


def healthz(metrics_url: str) -> tuple[int, str]:
    url = metrics_url.replace("/metrics", "/healthz")
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_every_service_answers_healthz_from_its_loops(stack):
    services = {name: url for name, url in stack.metrics.items() if name != "kubesim"}
    assert {"intake", "worker-1", "watcher"} <= set(services)
    for name, url in services.items():
        wait_for(lambda: healthz(url)[0] == 200, timeout=60, message=f"{name} healthy")
    assert "intake, intake-housekeeping stepping" in healthz(services["intake"])[1]
    assert "worker-liveness stepping" in healthz(services["worker-1"])[1]
    assert "healthy; leading" in healthz(services["watcher"])[1]


def test_a_redis_blip_leaves_every_service_healthy(stack):
    services = {name: url for name, url in stack.metrics.items() if name != "kubesim"}
    pids = {name: process.pid for name, process in stack.processes.items()}
    os.kill(stack.redis.process.pid, signal.SIGSTOP)   # Redis stops answering: the outage under test
    try:
        ends = time.monotonic() + BLIP_SECONDS
        while time.monotonic() < ends:
            for name, url in services.items():
                status, text = healthz(url)
                assert status == 200, f"{name} unhealthy during a Redis blip: {text}"
            time.sleep(0.5)   # the probe's period during the blip, not a wait for a condition
    finally:
        os.kill(stack.redis.process.pid, signal.SIGCONT)
    assert {name: process.pid for name, process in stack.processes.items()} == pids
    assert stack.dead() == []
