"""Helpers for tests: polling with a deadline instead of sleeping."""
from __future__ import annotations

import contextlib
import time
from typing import Callable

import pytest
from kubernetes import client, config


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
