"""What several commands share: reaching the configured Redis, and stopping on a signal."""
from __future__ import annotations

import signal
import threading

from podq.broker.store.reach import reach
from podq.shared.errors import SettingsError
from podq.shared.settings import Settings


def redis_from(settings: Settings, *, block_ms: int = 0):
    """A client for PODQ_REDIS_URL whose server has just answered; commands other than up/demo need one.

    An unreachable server or refused credentials end the command within seconds with one line
    (``RedisUnreachableError``, ``RedisAuthError``: exit codes in podq/cli.py).
    """
    if not settings.redis.url:
        raise SettingsError("PODQ_REDIS_URL is not set (start the stack with `podq up`, which prints it)")
    return reach(settings.redis.url, settings=settings.redis, block_ms=block_ms)


class Interrupt:
    """SIGINT and SIGTERM stop a foreground command; its exit code then follows the shell's
    convention, 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum, _frame) -> None:
        self.signum = signum
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)

    def exit_code(self, otherwise: int = 0) -> int:
        return 128 + self.signum if self.signum is not None else otherwise
