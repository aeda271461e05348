"""The Celery queue as Redis holds it: kombu's list, which podq pushes task messages onto."""
from __future__ import annotations

from typing import Sequence

import redis

from . import keys


def push(client: redis.Redis, messages: Sequence[str], *, queue: str = keys.CELERY_QUEUE) -> int:
    """LPUSH ready-made Celery messages (one round trip); returns how many."""
    if messages:
        client.lpush(queue, *messages)
    return len(messages)
