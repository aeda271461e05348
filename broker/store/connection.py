"""Opening Redis connections: the one place PODQ_REDIS_* settings become a client.

``PODQ_REDIS_URL`` takes four schemes:

* ``redis://[[user]:password@]host[:port][/db]`` — one server;
* ``rediss://…`` — the same over TLS;
* ``redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<master name>[/db]`` — the primary
  that the listed Sentinels name (default port 26379); the password is the primary's, the Sentinels'
  own password (if they have one) is ``PODQ_REDIS_SENTINEL_PASSWORD``;
* ``rediss+sentinel://…`` — the same, with TLS to the Sentinels and to the primary.

TLS is configured by ``PODQ_REDIS_TLS_CA_FILE`` (unset: the system's CAs), ``PODQ_REDIS_TLS_CERT_FILE``
and ``PODQ_REDIS_TLS_KEY_FILE`` (a client certificate), ``PODQ_REDIS_TLS_CHECK_HOSTNAME``. Before a TLS
client is handed out, one handshake (and a PING) is tried: a certificate problem is a setting problem,
raised at once as a :class:`SettingsError` naming the setting, instead of being retried like an outage.
Celery's transport gets the same choices from :func:`celery_broker`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

from podq.shared.errors import SettingsError
from podq.shared.settings import RedisSettings, load_redis_settings

from .kombu_transport import transport_path
from .scripts import ReloadingPipeline
from .tls import check_tls, tls_options

log = logging.getLogger(__name__)

SENTINEL_PORT = 26379
_SCHEMES = {"redis": (False, False), "rediss": (True, False), "unix": (False, False),
            "redis+sentinel": (False, True), "rediss+sentinel": (True, True)}


@dataclass(frozen=True, kw_only=True)
class RedisTarget:
    """What a PODQ_REDIS_URL names: one server, or a primary found through Sentinels."""

    tls: bool
    hosts: tuple[tuple[str, int], ...]     # the server, or every Sentinel
    master: str | None                     # the Sentinel master name; None: a server
    db: int
    username: str | None
    password: str | None

    @property
    def sentinel(self) -> bool:
        return self.master is not None

    def redacted(self) -> str:
        """The URL without its password, for messages and logs."""
        scheme = ("rediss" if self.tls else "redis") + ("+sentinel" if self.sentinel else "")
        auth = f"{self.username or ''}:***@" if self.password else (f"{self.username}@" if self.username else "")
        hosts = ",".join(f"{host}:{port}" for host, port in self.hosts)
        path = f"/{self.master}/{self.db}" if self.sentinel else f"/{self.db}"
        return f"{scheme}://{auth}{hosts}{path}"


def parse_url(url: str) -> RedisTarget:
    """Read PODQ_REDIS_URL; a malformed one raises SettingsError naming it (never echoing a password)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise SettingsError(f"PODQ_REDIS_URL: unknown scheme {scheme + '://' if scheme else '(none)'}; "
                            f"use one of {', '.join(s + '://' for s in _SCHEMES)}")
    tls, sentinel = _SCHEMES[scheme]
    netloc = parts.netloc.rpartition("@")[2]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    default_port = SENTINEL_PORT if sentinel else 6379
    if scheme == "unix":
        return RedisTarget(tls=False, hosts=(), master=None, db=0, username=username, password=password)
    hosts = []
    for item in netloc.split(","):
        if item.startswith("["):     # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, _, port = item.partition(":")
        if not host:
            raise SettingsError(f"PODQ_REDIS_URL: a host is missing in {_without_password(url)}")
        try:
            hosts.append((host, int(port) if port else default_port))
        except ValueError:
            raise SettingsError(f"PODQ_REDIS_URL: port {port!r} is not a number") from None
    path = [part for part in parts.path.split("/") if part]
    if sentinel and not path:
        raise SettingsError(f"PODQ_REDIS_URL: a Sentinel URL names the master after the hosts "
                            f"({scheme}://host:26379,…/<master name>[/db])")
    if not sentinel and len(hosts) > 1:
        raise SettingsError(f"PODQ_REDIS_URL: {scheme}:// takes one host; several are Sentinels "
                            f"({'rediss' if tls else 'redis'}+sentinel://)")
    master = path.pop(0) if sentinel else None
    if path and not path[0].isdigit():
        raise SettingsError(f"PODQ_REDIS_URL: the database must be a number in {_without_password(url)}")
    db = int(path[0]) if path else 0
    return RedisTarget(tls=tls, hosts=tuple(hosts), master=master, db=db, username=username, password=password)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


class _PrimaryConnection(SentinelManagedConnection):
    """A connection to the primary the Sentinels name, found again at every reconnect.

    redis-py (8.1) reconnects inside a command's retries through ``connect_check_health``, which
    dials the address the connection had last and skips Sentinel's own ``connect``: a command in
    flight when the primary dies retries the dead address until its retries run out (~25 s) and
    fails, although a replica was promoted after ~2 s. Reconnecting through ``connect`` (as
    redis-py did before) asks the Sentinels for the primary on every attempt.
    """

    def send_packed_command(self, command, check_health=True):
        if not self._sock:
            self.connect()
        return super().send_packed_command(command, check_health)


class _PrimarySSLConnection(_PrimaryConnection, SentinelManagedSSLConnection):
    pass


class Client(redis.Redis):
    """The client type the rest of podq passes around (only broker/store imports redis).

    A redis-py client whose pipelines send a script again when the server lost it
    (:class:`~.scripts.ReloadingPipeline`), and which knows what to ``WAIT`` for (:func:`durable`).
    """

    podq_wait: tuple[int, int] = (0, 0)   # (replicas, timeout in ms) for durable()

    def pipeline(self, transaction: bool = True, shard_hint=None) -> ReloadingPipeline:
        return ReloadingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def _retry() -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=30)


def connect(url: str | None = None, *, settings: RedisSettings | None = None, block_ms: int = 0) -> Client:
    """A client for ``url`` that rides out a Redis restart (or a Sentinel failover) of a few seconds.

    ``settings``: the TLS, Sentinel, ``WAIT`` and timeout settings; unset, they are read from the
    ``PODQ_REDIS_*`` environment variables, as every podq service reads them (so a producer's
    :func:`~podq.broker.client.submit.submit` waits for ``PODQ_REDIS_WAIT_REPLICAS`` like intake
    does). ``url`` unset: the settings' ``PODQ_REDIS_URL``. ``block_ms`` is the longest blocking
    read this client will issue; the socket timeout is raised above it so a blocking XREADGROUP is
    not cut short.
    """
    settings = settings if settings is not None else load_redis_settings()
    url = url or settings.url
    if not url:
        raise SettingsError("PODQ_REDIS_URL is unset: give connect() a URL or set PODQ_REDIS_URL")
    target = parse_url(url)
    timeout = settings.socket_timeout + block_ms / 1000.0
    common = dict(socket_timeout=timeout, socket_connect_timeout=settings.socket_timeout, retry=_retry(),
                  retry_on_error=[redis.ConnectionError, redis.TimeoutError], health_check_interval=30,
                  socket_keepalive=True, client_name="podq")
    tls = tls_options(settings) if target.tls else {}
    if target.tls:
        check_tls(*target.hosts[0], settings)
    if not target.sentinel:
        client = Client.from_url(url, **common, **tls)
    else:
        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=_sentinel_kwargs(settings, tls),
                            socket_timeout=settings.socket_timeout)
        client = sentinel.master_for(target.master, redis_class=Client, db=target.db,
                                     username=target.username, password=target.password, **common,
                                     connection_class=_PrimarySSLConnection if tls else _PrimaryConnection,
                                     **tls)
    client.podq_wait = (settings.wait_replicas, int(settings.wait_timeout * 1000))
    return client


def durable(client: redis.Redis, pipe) -> list:
    """Execute ``pipe``, whose writes must survive a failover; its replies.

    With ``PODQ_REDIS_WAIT_REPLICAS`` set, a ``WAIT`` ends the pipeline (the same connection, so it
    covers exactly these writes): the call returns once that many replicas hold them, or after
    ``PODQ_REDIS_WAIT_TIMEOUT``, logging how many did.
    """
    replicas, timeout_ms = getattr(client, "podq_wait", (0, 0))
    if replicas:
        pipe.execute_command("WAIT", replicas, timeout_ms)
    # A command's own error is raised as the server gave it (not wrapped in the pipeline's message).
    replies = pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    if not replicas:
        return replies
    *replies, acknowledged = replies
    if int(acknowledged) < replicas:
        _short_of_replicas(client, int(acknowledged), replicas, timeout_ms)
    return replies


# A primary that lost its replica answers every WAIT short: one line per this many seconds and client.
WAIT_WARNING_EVERY = 10.0


def _short_of_replicas(client: redis.Redis, acknowledged: int, replicas: int, timeout_ms: int) -> None:
    short = getattr(client, "podq_wait_short", 0) + 1
    now = time.monotonic()
    if now - getattr(client, "podq_wait_warned", float("-inf")) < WAIT_WARNING_EVERY:
        client.podq_wait_short = short
        return
    client.podq_wait_short, client.podq_wait_warned = 0, now
    log.warning("only %d of %d replicas acknowledged writes within %d ms (PODQ_REDIS_WAIT_TIMEOUT); a failover "
                "now could lose them (%d writes short of replicas since the last such line)",
                acknowledged, replicas, timeout_ms, short)


def _sentinel_kwargs(settings: RedisSettings, tls: dict) -> dict:
    kwargs: dict = {"socket_timeout": settings.socket_timeout, "socket_connect_timeout": settings.socket_timeout}
    if settings.sentinel_password:
        kwargs["password"] = settings.sentinel_password
    if tls:
        kwargs.update(ssl=True, **tls)
    return kwargs


@dataclass(frozen=True, kw_only=True)
class CeleryBroker:
    """What Celery is given for a PODQ_REDIS_URL (see :func:`celery_broker`)."""

    url: str                   # broker_url
    transport: str | None      # broker_transport: podq's kombu transport (broker/store/kombu_transport.py)
    options: dict              # transport options to add (the Sentinels and their arguments)
    tls: dict | None           # broker_use_ssl


def celery_broker(url: str, settings: RedisSettings) -> CeleryBroker:
    """Celery's broker settings for ``url``, with podq's kombu transport.

    A Sentinel URL becomes kombu's ``sentinel://`` form naming the first Sentinel, with every
    Sentinel, the master name and the Sentinels' own connection arguments as transport options.
    """
    target = parse_url(url)
    tls = tls_options(settings) if target.tls else None
    if tls:
        check_tls(*target.hosts[0], settings)
    if not target.sentinel:
        return CeleryBroker(url=url, transport=transport_path(False) if target.hosts else None, options={}, tls=tls)
    auth = ""
    if target.password:
        auth = f"{target.username or ''}:{_quote(target.password)}@"
    elif target.username:
        auth = f"{target.username}@"
    (host, port), *_ = target.hosts
    options = {"master_name": target.master, "sentinel_kwargs": _sentinel_kwargs(settings, tls or {}),
               "sentinels": [[host, port] for host, port in target.hosts]}
    return CeleryBroker(url=f"sentinel://{auth}{host}:{port}/{target.db}", transport=transport_path(True),
                        options=options, tls=tls)


def _quote(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe="")


def ping(client: redis.Redis) -> bool:
    """True when the server answers (raises the client's error when it cannot be reached)."""
    return bool(client.ping())


