"""Opening Redis connections with podq's timeouts and retry policy."""
from __future__ import annotations

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from podq.shared.settings import RedisSettings


def connect(url: str, *, settings: RedisSettings | None = None, block_ms: int = 0) -> redis.Redis:
    """A client for ``url`` that rides out a Redis restart of a few seconds.

    ``block_ms`` is the longest blocking read this client will issue; the socket
    timeout is raised above it so a blocking XREADGROUP is not cut short.
    """
    settings = settings or RedisSettings()
    timeout = settings.socket_timeout + block_ms / 1000.0
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=30)
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=settings.socket_timeout,
        retry=retry, retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=30, socket_keepalive=True, client_name="podq",
    )


def ping(client: redis.Redis) -> bool:
    """True when the server answers (raises the client's error when it cannot be reached)."""
    return bool(client.ping())


# The client type the rest of podq passes around (only broker/store imports redis).
Client = redis.Redis
