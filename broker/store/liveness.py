"""Worker liveness: a record each worker process renews, and the return of a dead worker's messages.

kombu's Redis transport gives a message back only after the visibility timeout (300 s
by default), because nothing tells it that the worker holding the message is gone. Each
podq worker process therefore renews a liveness record (``podq:workers``: worker id →
server time it lapses) together with the delivery tags it holds
(``podq:workers:deliveries``). Any live worker sweeps now and then
(``lua/restore.lua``): a message delivered longer than the grace ago that no live worker
reports holding goes back to the queue, as kombu's own restore would put it. A claim
whose worker's record lapsed is void (``lua/claim.lua``), so the returned message's new
delivery can create; the old delivery, if its process was only paused, checks its claim
before it creates (``lua/hold.lua``) and stands down. The visibility timeout stays as the
last resort (no live worker at all, or a message podq cannot read).
"""
from __future__ import annotations

from typing import Iterable

import redis

from . import keys

from .scripts import scripts_for

# A lapsed worker's record is forgotten this long after it lapsed (a paused worker coming back
# later simply writes a new one).
FORGET_AFTER = 3600.0


class Liveness:
    """One worker process's liveness record, its claim checks, and the sweep for dead peers."""

    def __init__(self, client: redis.Redis, *, worker: str, ttl: float) -> None:
        self._client = client
        self.worker = worker
        self.ttl = ttl
        scripts = scripts_for(client)
        self._beat = scripts.beat
        self._hold = scripts.hold
        self._restore = scripts.restore
        self._giveback = scripts.giveback

    def beat(self, tags: Iterable[str]) -> bool:
        """Renew the record, listing the delivery tags held; True when it had lapsed before."""
        return bool(self._beat(keys=[keys.WORKERS_ZSET, keys.WORKER_DELIVERIES],
                               args=[self.worker, self.ttl, " ".join(tags), ""]))

    def leave(self) -> None:
        """Remove the record (a clean shutdown; kombu gives the held messages back itself)."""
        self._beat(keys=[keys.WORKERS_ZSET, keys.WORKER_DELIVERIES], args=[self.worker, self.ttl, "", "leave"])

    def hold(self, job_id: str, token: str) -> bool:
        """True when the delivery ``token`` still holds ``job_id``'s claim (its record is renewed too)."""
        return bool(self._hold(keys=[keys.job_key(job_id), keys.WORKERS_ZSET], args=[token, self.worker, self.ttl]))

    def restore_dead(self, *, queue: str = keys.CELERY_QUEUE, limit: int = 500) -> int:
        """Put back on ``queue`` the messages of workers whose record lapsed; returns how many."""
        return int(self._restore(
            keys=[keys.WORKERS_ZSET, keys.WORKER_DELIVERIES, keys.KOMBU_UNACKED, keys.KOMBU_UNACKED_INDEX, queue],
            args=[self.ttl, limit, queue, FORGET_AFTER]))

    def give_back(self, tags: Iterable[str], *, queue: str = keys.CELERY_QUEUE) -> int:
        """Put back on ``queue`` this worker's deliveries ``tags``, dropped unstarted (``lua/giveback.lua``)."""
        tags = list(tags)
        if not tags:
            return 0
        return int(self._giveback(keys=[keys.KOMBU_UNACKED, keys.KOMBU_UNACKED_INDEX, queue], args=[queue, *tags]))


def live_workers(client: redis.Redis) -> list[str]:
    """Ids of the workers whose liveness record has not lapsed (by the server's clock)."""
    return live(client, "worker")


def live(client: redis.Redis, role: str) -> list[str]:
    """Instances of ``role`` (worker, intake, watcher) whose liveness record has not lapsed (server clock)."""
    seconds, micros = client.time()
    return [member.decode() for member in
            client.zrangebyscore(keys.liveness_key(role), seconds + micros / 1e6, "+inf")]


class Presence:
    """The liveness record of an intake or watcher process (``lua/alive.lua``), renewed by its own loop.

    ``podq status`` and the gauges count a process as alive while its record has not lapsed, so a
    SIGKILLed intake or watcher shows as gone ``ttl`` seconds after its last renewal.
    """

    def __init__(self, client: redis.Redis, *, role: str, instance: str, ttl: float) -> None:
        self._client = client
        self._key = keys.liveness_key(role)
        self.instance = instance
        self.ttl = ttl
        self._alive = scripts_for(client).alive

    def renew(self) -> None:
        self._alive(keys=[self._key], args=[self.instance, self.ttl, FORGET_AFTER, ""])

    def leave(self) -> None:
        self._alive(keys=[self._key], args=[self.instance, self.ttl, FORGET_AFTER, "leave"])
