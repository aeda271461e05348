"""Helpers every test tier shares: polling with a deadline instead of sleeping, the data files under tests/data.

The modules beside this one hold the harnesses of one part each: :mod:`.watcher`
(pods in kubesim with their ledger entries, a watcher in this process), :mod:`.workers`
(admitted jobs, Celery workers in this process or as ``podq worker`` processes) and
:mod:`.pods` (raw pod objects built from the samples). Test modules import from here,
never from each other.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from kubernetes import client, config

DATA = Path(__file__).resolve().parents[1] / "data"


def pod_status_samples() -> dict[str, Any]:
    """Real pod ``status`` shapes by situation name (tests/data/pod-status-samples.json)."""
    return json.loads((DATA / "pod-status-samples.json").read_text())


def wait_for(condition: Callable[[], object], *, timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> object:
    """Poll ``condition`` until it returns a truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@contextlib.contextmanager
def core_v1(kubeconfig: str):
    """The official client's CoreV1Api on ``kubeconfig``, closed afterwards."""
    api_client = config.new_client_from_config(config_file=kubeconfig)
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()
