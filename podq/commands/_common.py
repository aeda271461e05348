"""What several commands share: reaching the configured Redis."""
from __future__ import annotations

from podq.broker.store.connection import connect
from podq.shared.errors import SettingsError
from podq.shared.settings import Settings


def redis_from(settings: Settings, *, block_ms: int = 0):
    """A client for PODQ_REDIS_URL; commands other than up/demo need a server to talk to."""
    if not settings.redis.url:
        raise SettingsError("PODQ_REDIS_URL is not set (start the stack with `podq up`, which prints it)")
    return connect(settings.redis.url, settings=settings.redis, block_ms=block_ms)
