"""Helpers for tests: polling with a deadline instead of sleeping."""
from __future__ import annotations

import time
from typing import Callable

import pytest


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
