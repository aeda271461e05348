"""Lease policy: which scopes this replica leads.

Every ``lease_poll`` seconds the keeper renews the leases it holds and tries to
take the ones it does not (``lua/lease.lua`` in broker/). A replica that could
not renew for ``lease_ttl`` seconds steps down on its own; a deposed replica
that keeps publishing anyway is refused by the publish script's fencing check.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

from podq.broker.store.watchstate import WatchStore
from podq.shared import metrics

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Holds or seeks the lease of each scope; reports gains and losses through callbacks."""

    def __init__(self, store: WatchStore, *, scopes: Sequence[str], holder: str, ttl: float,
                 on_gain: Callable[[str, str], None], on_loss: Callable[[str], None], poll: float = 1.0) -> None:
        self._store = store
        self._scopes = list(scopes)
        self.holder = holder
        self._ttl = ttl
        # How long one renewal shows the scope as led (podq status, the gauges): three renewal periods
        # (at least 2 s), so a leader that stops renewing shows as gone within seconds, not a lease TTL.
        self._alive = min(ttl, max(3 * poll, 2.0))
        self._on_gain = on_gain
        self._on_loss = on_loss
        self.tokens: dict[str, str] = {}
        self._renewed: dict[str, float] = {}

    def step(self) -> bool:
        """One round over every scope; True when this replica leads at least one."""
        for scope in self._scopes:
            mine = self.tokens.get(scope)
            try:
                held, token = self._store.hold(scope, holder=self.holder, token=mine, ttl=self._ttl,
                                               alive=self._alive)
            except Exception:
                if mine is not None and time.monotonic() - self._renewed.get(scope, 0.0) > self._ttl:
                    log.error("scope %s: could not renew the lease for %.0f s; stepping down", scope, self._ttl)
                    self.lose(scope)
                raise
            if held:
                self._renewed[scope] = time.monotonic()
                if token != mine:
                    if mine is not None:
                        self.lose(scope)
                    log.info("scope %s: %s leads with token %s", scope, self.holder, token)
                    self.tokens[scope] = token
                    metrics.WATCHER_TAKEOVERS.labels(scope).inc()
                    metrics.WATCHER_LEADER.labels(scope).set(1)
                    self._on_gain(scope, token)
                    self._record(scope)
            elif mine is not None:
                log.warning("scope %s: lease taken over by %s", scope, token)
                self.lose(scope)
        return bool(self.tokens)

    def _record(self, scope: str) -> None:
        try:
            self._store.record_scope(scope)
        except Exception as exc:  # noqa: BLE001 - only status and the gauges need it; the next gain retries
            log.warning("scope %s: could not record the scope for status: %s", scope, exc)

    def lose(self, scope: str) -> None:
        """Forget the scope's token (the lease expired, was taken, or its runner was fenced)."""
        if self.tokens.pop(scope, None) is not None:
            metrics.WATCHER_LEADER.labels(scope).set(0)
            self._on_loss(scope)

    def release_all(self) -> None:
        """Give up every lease at shutdown, so a standby takes over at once."""
        for scope, token in list(self.tokens.items()):
            try:
                self._store.release(scope, token=token)
            except Exception:  # noqa: BLE001 - the TTL ends it anyway
                log.warning("scope %s: could not release the lease; it expires in %.0f s", scope, self._ttl)
            self.lose(scope)
