"""Named, guarded, stoppable service loops.

Every endless loop in podq runs through :func:`run_loop`: it has a name that
appears in every log line, stops when its ``stop`` event is set, logs a crashing
step loudly and retries with backoff, and gives up (raising :class:`LoopCrashed`)
after too many crashes in a row so the process exits non-zero instead of hanging.
"""
from __future__ import annotations

import logging
import random
import signal
import threading
import time
from typing import Callable, Iterable

from .errors import PodqError

log = logging.getLogger(__name__)

# When each running loop of this process last began a step (time.monotonic()): the process's own
# liveness, which GET /healthz on its metrics port reads (:func:`stalled`). One table per process,
# as the loops are; a loop leaves it when it stops.
_STEPS: dict[str, float] = {}

STALL_LIMIT = 120.0
"""Seconds without a new step after which a loop counts as stuck. A step that waits out a Redis outage
(its calls retry for ~25 s, then the loop backs off up to 15 s) stays well inside it."""


def stalled(names: Iterable[str], *, limit: float = STALL_LIMIT) -> list[str]:
    """Of the loops ``names``, each one that is not running or began no step within ``limit`` seconds."""
    now = time.monotonic()
    return [name for name in names if now - _STEPS.get(name, float("-inf")) > limit]


class LoopCrashed(PodqError):
    """A loop crashed more times in a row than it is allowed to."""


def health(names: Iterable[str], *, limit: float = STALL_LIMIT) -> tuple[bool, str]:
    """(healthy, why) from the loops ``names``: healthy while each began a step within ``limit`` seconds."""
    names = list(names)
    stuck = stalled(names, limit=limit)
    if stuck:
        return False, f"loop(s) {', '.join(stuck)} began no step within {limit:g} s"
    return True, f"loops {', '.join(names)} stepping"


def run_loop(name: str, step: Callable[[], object], *, stop: threading.Event,
             max_crashes: int = 10, backoff: float = 0.5, max_backoff: float = 15.0,
             idle_wait: float = 0.0) -> None:
    """Call ``step`` until ``stop`` is set.

    ``idle_wait`` seconds are waited (on the stop event) after a step that returns
    a falsy value, so polling loops do not spin.
    """
    log.info("loop %s started", name)
    try:
        _loop(name, step, stop=stop, max_crashes=max_crashes, backoff=backoff, max_backoff=max_backoff,
              idle_wait=idle_wait)
    finally:
        _STEPS.pop(name, None)
    log.info("loop %s stopped", name)


def _loop(name: str, step: Callable[[], object], *, stop: threading.Event, max_crashes: int, backoff: float,
          max_backoff: float, idle_wait: float) -> None:
    crashes = 0
    while not stop.is_set():
        _STEPS[name] = time.monotonic()
        try:
            did_work = step()
            crashes = 0
        except Exception:  # noqa: BLE001 - the guard exists to catch anything a step throws
            crashes += 1
            log.exception("loop %s crashed (%d in a row)", name, crashes)
            if crashes >= max_crashes:
                raise LoopCrashed(f"loop {name} crashed {crashes} times in a row") from None
            delay = min(max_backoff, backoff * 2 ** (crashes - 1))
            stop.wait(delay * random.uniform(0.5, 1.0))
            continue
        if not did_work and idle_wait:
            stop.wait(idle_wait)


def stop_on_signals(stop: threading.Event, signals=(signal.SIGTERM, signal.SIGINT)) -> None:
    """Set ``stop`` when the process receives one of ``signals`` (main thread only)."""
    def handler(signum, _frame):
        log.info("received signal %s, stopping", signal.Signals(signum).name)
        stop.set()
    for signum in signals:
        signal.signal(signum, handler)
