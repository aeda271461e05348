"""Whether a Redis can be used at all, answered within seconds.

:func:`~.connection.connect` builds a client that rides out an outage (a call retries for ~25 s), which
is right for a service in the middle of its work and wrong for a command a person typed, or a scheduler
starting up: they should hear at once that the server is not there or that it refuses the credentials.
:func:`reach` connects and sends one ``PING`` without retries, within a deadline, and turns what went
wrong into one line naming the URL (password masked): :class:`RedisUnreachableError` or
:class:`RedisAuthError`, which is never retried.
"""
from __future__ import annotations

import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError

from podq.broker.errors import BrokerError
from podq.shared.errors import SettingsError
from podq.shared.settings import RedisSettings, load_redis_settings

from .connection import Client, connect, parse_url

DEADLINE = 5.0
"""Seconds :func:`reach` waits for an answer at most (less when ``PODQ_REDIS_SOCKET_TIMEOUT`` is lower)."""


class RedisUnreachableError(BrokerError):
    """No Redis answered at the configured URL within the deadline."""


class RedisAuthError(BrokerError):
    """Redis answered and refused the URL's user or password (retrying cannot help)."""


def reach(url: str | None = None, *, settings: RedisSettings | None = None, block_ms: int = 0,
          deadline: float = DEADLINE) -> Client:
    """A client from :func:`connect` whose server has just answered a ``PING``.

    Raises :class:`RedisUnreachableError` or :class:`RedisAuthError` (one-line messages) within
    ``deadline`` seconds, or the :class:`SettingsError` ``connect`` raises for a URL or TLS setting.
    """
    settings = settings if settings is not None else load_redis_settings()
    url = url or settings.url
    if not url:
        raise SettingsError("PODQ_REDIS_URL is not set")
    target = parse_url(url)
    where = target.redacted()
    deadline = min(deadline, settings.socket_timeout)
    outcome: dict[str, object] = {}

    def attempt() -> None:
        try:
            client = connect(url, settings=settings, block_ms=block_ms)
            _ping_once(client, deadline)
            outcome["client"] = client
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    # A thread bounds the whole attempt (Sentinel look-ups, a TLS check, a server that accepts and
    # stays silent): past the deadline the caller gets its answer and the attempt is abandoned.
    thread = threading.Thread(target=attempt, name="podq-redis-reach", daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise RedisUnreachableError(f"cannot reach Redis at {where}: no answer within {deadline:g} s; "
                                    f"check PODQ_REDIS_URL and that the server is up")
    error = outcome.get("error")
    if error is None:
        return outcome["client"]  # type: ignore[return-value]
    if isinstance(error, redis.AuthenticationError):
        user = target.username or "default"
        if target.password is None:
            raise RedisAuthError(f"Redis at {where} requires a password and PODQ_REDIS_URL gives none "
                                 f"(user {user!r}): {_reason(error)}") from None
        raise RedisAuthError(f"Redis at {where} refused user {user!r}: {_reason(error)}; check the user and "
                             f"password in PODQ_REDIS_URL") from None
    if isinstance(error, MasterNotFoundError):
        sentinels = ", ".join(f"{host}:{port}" for host, port in target.hosts)
        raise RedisUnreachableError(f"cannot reach Redis at {where}: no Sentinel ({sentinels}) named a primary "
                                    f"{target.master!r}; check PODQ_REDIS_URL and that the Sentinels are up") from None
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError, OSError)):
        raise RedisUnreachableError(f"cannot reach Redis at {where}: {_reason(error)}; check PODQ_REDIS_URL "
                                    f"and that the server is up") from None
    raise error  # type: ignore[misc]


def _ping_once(client: Client, timeout: float) -> None:
    """Open one connection of ``client``'s pool (Sentinel look-up, TLS, AUTH included) and PING, no retries."""
    connection = client.connection_pool.make_connection()
    connection.retry = Retry(NoBackoff(), 0)
    connection.socket_connect_timeout = min(connection.socket_connect_timeout or timeout, timeout)
    connection.socket_timeout = min(connection.socket_timeout or timeout, timeout)
    try:
        connection.connect()
        connection.send_command("PING")
        try:
            connection.read_response()
        except redis.ResponseError as exc:
            if "NOPERM" not in str(exc):   # a user not allowed PING has still been let in
                raise
    finally:
        connection.disconnect()


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text.rstrip(".")
