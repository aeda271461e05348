"""Helpers for tests that use kubesim: a context-managed server and a deadline poller (never sleep-and-hope)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from .server import KubeSim
from .settings import KubeletDelays, SimSettings

T = TypeVar("T")


def fast_settings(**overrides: object) -> SimSettings:
    """Settings for tests: 5 ms kubelet steps, 50 ms default run time, short back-off."""
    delays = KubeletDelays(schedule=0.005, start=0.005, sandbox=0.005, init=0.005, ready=0.005, teardown=0.005, kill=0.005, finalize=0.005, backoff=0.02)
    settings = SimSettings(delays=delays, default_run_seconds=0.05)
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


@contextlib.contextmanager
def running_kubesim(settings: SimSettings | None = None, **overrides: object) -> Iterator[KubeSim]:
    """A kubesim in a background thread for the duration of the block."""
    sim = KubeSim.start(settings or fast_settings(**overrides))
    try:
        yield sim
    finally:
        sim.stop()


def wait_for(check: Callable[[], T | None], *, timeout: float = 10.0, interval: float = 0.01, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy, or raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
