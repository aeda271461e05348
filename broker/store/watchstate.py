"""The watcher's own state in Redis: its lease, its position, its pods' states.

Per watched scope (a namespace, or ``_all``) the watcher keeps, under
``podq:watcher:<scope>:*`` (see :func:`podq.broker.store.keys.watcher_key`):

* ``lease``: the current fencing token (``<fence>:<holder>``), with a TTL (``lua/lease.lua``);
* ``alive``: the same token, with a TTL of a few renewals: what status and the gauges call "led";
* ``fence``: the counter tokens are numbered from;
* ``rv``: the resourceVersion its results are published up to;
* ``states``: a hash, pod ``namespace/name`` → the watcher's record of what it published.

``rv`` and ``states`` change only inside the publish script, together with the
results, and only while the token is the lease's current value: :meth:`WatchStore.checkpoint`
names them for :meth:`podq.broker.store.publish.Publisher.publish_items`. This
class only stores; the ledger, publishing and control requests are the
watcher's other collaborators.
"""
from __future__ import annotations

import redis

from . import keys
from .publish import Checkpoint
from .scripts import scripts_for


class WatchStore:
    """A watcher's lease, position and pod states, per scope."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lease = scripts_for(client).lease

    # -- lease ---------------------------------------------------------------------------------
    def _lease_keys(self, scope: str) -> list[str]:
        return [keys.watcher_key(scope, "lease"), keys.watcher_key(scope, "fence"), keys.watcher_key(scope, "alive")]

    def hold(self, scope: str, *, holder: str, token: str | None, ttl: float,
             alive: float | None = None) -> tuple[bool, str]:
        """Acquire the scope's lease, or renew ``token``; (held, current token).

        ``alive``: seconds the scope counts as led after this renewal (``podq status``, the gauges);
        a few renewal periods, so a leader that stops renewing shows long before its lease ends.
        """
        alive = min(ttl, alive if alive is not None else ttl)
        held, current = self._lease(keys=self._lease_keys(scope),
                                    args=["hold", holder, token or "", int(ttl * 1000), max(1, int(alive * 1000))])
        return bool(held), current.decode() if isinstance(current, bytes) else current

    def record_scope(self, scope: str) -> None:
        """Note that ``scope`` has been led, so status and the gauges see it even with no leader."""
        self._client.sadd(keys.WATCHER_SCOPES_SET, scope)

    def release(self, scope: str, *, token: str) -> bool:
        """Give the lease up (only if ``token`` still holds it)."""
        released, _ = self._lease(keys=self._lease_keys(scope), args=["release", "", token, 0, 0])
        return bool(released)

    def lease_holder(self, scope: str) -> str | None:
        """The token holding the scope's lease, or None when no replica leads it (the reconciler asks)."""
        value = self._client.get(keys.watcher_key(scope, "lease"))
        return value.decode() if value is not None else None

    # -- position and states -------------------------------------------------------------------
    def position(self, scope: str) -> str | None:
        value = self._client.get(keys.watcher_key(scope, "rv"))
        return value.decode() if value else None

    def states(self, scope: str, *, page: int = 5000) -> dict[str, bytes]:
        """Every stored pod state of ``scope`` (read in pages, not one huge reply)."""
        return {field.decode(): value
                for field, value in self._client.hscan_iter(keys.watcher_key(scope, "states"), count=page)}

    def checkpoint(self, scope: str, *, token: str, position: str | None) -> Checkpoint:
        """Where a publish batch of ``scope`` stores its pods' states and position, under ``token``."""
        return Checkpoint(lease_key=keys.watcher_key(scope, "lease"), token=token,
                          states_key=keys.watcher_key(scope, "states"),
                          position_key=keys.watcher_key(scope, "rv"), position=position)
