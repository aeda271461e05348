"""Errors raised by broker/."""
from podq.shared.errors import PodqError


class BrokerError(PodqError):
    """Base of broker/'s errors."""


class FencedError(BrokerError):
    """A publish carried a lease token that is no longer the current one."""


class RedisStartError(BrokerError):
    """The embedded Redis-compatible server could not be started."""
