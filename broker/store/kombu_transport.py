"""kombu's Redis and Sentinel transports as podq's workers use them, with what a failover needs.

Celery's consumer, on a broker connection error (Celery 5.7, kombu 5.7), first *collects* its
connection: the default channel's close fails on the dead socket of its BRPOP (the error is
swallowed, the channel stays open), then kombu closes the transport's other channels, newest
first, and stops at the first that fails (one giving back its deliveries to an unreachable
server), and the transport is detached from the connection anyway (``transport.client = None``).
Celery then closes the connection: the default channel's second close gives its unacknowledged
deliveries back (``restore_unacked``), which needs a new Redis pool, whose parameters are read
from ``transport.client``: ``None``. The ``AttributeError("'NoneType' object has no attribute
'hostname'")`` that follows is no connection error, so it escapes Celery's cleanup and the worker
exits ("Unrecoverable error"). It takes a BRPOP in flight and deliveries held at the moment of the
loss, which a busy worker has at most failovers (kombu#582 shows the same traceback from another
path). tests/integration/test_kombu_transport.py replays the sequence.

Here a channel whose transport was detached raises ``ConnectionError`` when it would open a
pool: the cleanup ignores it, as it ignores the other errors of a dead connection, and Celery
reconnects. The deliveries the old channel held stay in kombu's unacked hash; the worker
returns the ones it never started once it is connected again (:mod:`podq.workers.liveness`).

The Sentinel transport takes the Sentinels from the ``sentinels`` transport option instead of
``;``-separated alternate URLs: on a connection error kombu switches to the next alternate URL
and re-reads the transport from its scheme, which would put kombu's own transport back.
"""
from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis
from redis.sentinel import Sentinel


class _Detachable:
    """A channel that refuses to build a pool once its transport has left the connection."""

    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise ConnectionError("the broker connection of this channel was closed (after a connection loss)")
        return super()._connparams(asynchronous)


class Channel(_Detachable, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    """``redis://`` and ``rediss://`` (TLS comes from ``broker_use_ssl``)."""

    Channel = Channel


class SentinelChannel(_Detachable, kombu_redis.SentinelChannel):
    from_transport_options = kombu_redis.SentinelChannel.from_transport_options + ("sentinels",)

    #: Every Sentinel as ``[host, port]`` (from the transport options).
    sentinels = None

    def _sentinel_managed_pool(self, asynchronous: bool = False):
        if not self.sentinels:
            return super()._sentinel_managed_pool(asynchronous)
        params = self._connparams(asynchronous)
        params.pop("host", None)
        params.pop("port", None)
        manager = Sentinel([(host, int(port)) for host, port in self.sentinels],
                           min_other_sentinels=getattr(self, "min_other_sentinels", 0),
                           sentinel_kwargs=getattr(self, "sentinel_kwargs", None), **params)
        # Kept so that kombu's _disconnect_pools closes its connections to the Sentinels.
        if asynchronous:
            self._async_sentinel_manager = manager
        else:
            self._sentinel_manager = manager
        if getattr(self, "master_name", None) is None:
            raise ValueError("'master_name' transport option must be specified.")
        credentials = {key: params[key] for key in ("username", "password") if key in params}
        return manager.master_for(self.master_name, redis.Redis, **credentials).connection_pool


class SentinelTransport(kombu_redis.SentinelTransport):
    """``redis+sentinel://`` (as kombu's ``sentinel://`` with the Sentinels as an option)."""

    Channel = SentinelChannel


def transport_path(sentinel: bool) -> str:
    """The ``broker_transport`` Celery is given (kombu resolves it by path)."""
    return f"{__name__}:{'SentinelTransport' if sentinel else 'Transport'}"
