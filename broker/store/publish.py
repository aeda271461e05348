"""Publishing results: every result goes through ``lua/publish.lua``.

The script enforces the per-job rules (first terminal result wins; pending and
running at most once, in order; adopted sets no latch) and, for the watcher,
checks its lease token and stores its position and pods' states in the same call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import redis

from podq.broker.errors import FencedError
from podq.shared.records import KubernetesWatch

from .scripts import register


@dataclass(frozen=True, kw_only=True)
class Fence:
    """A publisher's lease: the key that must hold ``token`` for a publish to land."""

    key: str
    token: str


@dataclass(frozen=True, kw_only=True)
class Position:
    """A value stored with the batch, e.g. the resourceVersion a watcher reached."""

    key: str
    value: str


@dataclass(frozen=True, kw_only=True)
class PodState:
    """A pod's last known state, stored in ``hash_key`` under ``field`` with the batch."""

    field: str
    value: bytes | str


@dataclass(frozen=True, kw_only=True)
class Item:
    """One entry of a publish batch: a result, a pod state, or both."""

    result: KubernetesWatch | None = None
    pod_state: PodState | None = None


DEFAULT_LEDGER_TTL = 7 * 24 * 3600


class Publisher:
    """Publishes batches of results through the one publish script."""

    def __init__(self, client: redis.Redis, *, ledger_ttl: float = DEFAULT_LEDGER_TTL) -> None:
        self._script = register(client, "publish")
        self._ledger_ttl = int(ledger_ttl)

    def publish(self, results: Sequence[KubernetesWatch]) -> list[str]:
        """Publish results; returns each one's stream entry id, or "" where it was dropped."""
        return self.publish_items([Item(result=result) for result in results])

    def publish_items(self, items: Sequence[Item], *, fence: Fence | None = None,
                      position: Position | None = None, states_key: str | None = None) -> list[str]:
        """Publish a batch atomically, with an optional lease check, position and pod states."""
        args: list = [repr(time.time()), fence.key if fence else "", fence.token if fence else "",
                      position.key if position else "", position.value if position else "",
                      states_key or "", self._ledger_ttl, len(items)]
        for item in items:
            result, state = item.result, item.pod_state
            args.extend((result.job_id if result else "", result.state.value if result else "",
                         result.scheduler_id if result else "", result.encode() if result else b"",
                         state.field if state else "", state.value if state else ""))
        try:
            entries = self._script(keys=[], args=args)
        except redis.ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise FencedError(str(exc)) from None
            raise
        return [entry.decode() if isinstance(entry, bytes) else "" for entry in entries]
