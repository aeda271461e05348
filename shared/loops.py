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
from typing import Callable

from .errors import PodqError

log = logging.getLogger(__name__)


class LoopCrashed(PodqError):
    """A loop crashed more times in a row than it is allowed to."""


def run_loop(name: str, step: Callable[[], object], *, stop: threading.Event,
             max_crashes: int = 10, backoff: float = 0.5, max_backoff: float = 15.0,
             idle_wait: float = 0.0) -> None:
    """Call ``step`` until ``stop`` is set.

    ``idle_wait`` seconds are waited (on the stop event) after a step that returns
    a falsy value, so polling loops do not spin.
    """
    crashes = 0
    log.info("loop %s started", name)
    while not stop.is_set():
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
    log.info("loop %s stopped", name)


def stop_on_signals(stop: threading.Event, signals=(signal.SIGTERM, signal.SIGINT)) -> None:
    """Set ``stop`` when the process receives one of ``signals`` (main thread only)."""
    def handler(signum, _frame):
        log.info("received signal %s, stopping", signal.Signals(signum).name)
        stop.set()
    for signum in signals:
        signal.signal(signum, handler)
