"""Publishing results: every result goes through ``lua/publish.lua``.

The script enforces the per-job rules (first terminal result wins; pending and
running at most once, in order; adopted sets no latch) and, for the watcher,
checks its lease token and stores its position and pods' states in the same call.
Every key the script touches is named here (``KEYS[]``): each result's ledger hash,
and the results stream and job set of the scheduler believed to own it. Adoption
can move a job between that belief and the call; the script then writes nothing
and names the owners, and the batch is sent again with theirs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Sequence

import redis

from podq.broker.errors import BrokerError, FencedError
from podq.shared import metrics
from podq.shared.records import KubernetesWatch, event_id_for
from podq.shared.states import State

from . import keys
from .connection import durable
from .scripts import scripts_for


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """What a watcher stores with a batch: its lease (the batch lands only while ``token``
    holds ``lease_key``), the position reached, and the hash its pods' states go to."""

    lease_key: str
    token: str
    states_key: str
    position_key: str
    position: str | None = None


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
    pod_uid: str = ""
    """The uid of the pod the result is about ("" for none). A terminal result records it as its
    job's ``uid`` when the ledger has none yet: the pod ended the job before its create's answer
    reached the worker, which then keeps the pod (workers/create.py)."""


@dataclass(frozen=True)
class Published:
    """What a batch published: each item's stream entry id ("" where it published nothing), and
    the submission time (producer's clock) of each job whose result was published, from its ledger."""

    entries: list[str]
    submitted_at: dict[str, float]


DEFAULT_LEDGER_TTL = 7 * 24 * 3600


class Publisher:
    """Publishes batches of results through the one publish script."""

    # Owners move only by adoption; a batch is asked again at most this often.
    MAX_OWNER_RETRIES = 8

    def __init__(self, client: redis.Redis, *, ledger_ttl: float = DEFAULT_LEDGER_TTL,
                 cluster: str | None = None) -> None:
        """``cluster``: whose jobs this publisher ends (as records hold it; None: the default), for the
        in-flight set a terminal result takes them out of."""
        self._client = client
        self._inflight = keys.inflight_key(cluster)
        self._script = scripts_for(client).publish
        self._ledger_ttl = int(ledger_ttl)

    def publish(self, results: Sequence[KubernetesWatch]) -> list[str]:
        """Publish results; returns each one's stream entry id, or "" where it was dropped."""
        return self.publish_items([Item(result=result) for result in results]).entries

    def publish_items(self, items: Sequence[Item], *, checkpoint: Checkpoint | None = None) -> Published:
        """Publish a batch atomically, with the watcher's lease check, position and pod states."""
        owners: dict[str, str] = {}
        for _ in range(self.MAX_OWNER_RETRIES):
            reply = self._call(items, checkpoint, owners)
            tag, rest = reply[0], reply[1:]
            if tag == b"OK":
                published = [entry.decode() if isinstance(entry, bytes) else "" for entry in rest[:len(items)]]
                count_published(items, published)
                return Published(published, _submission_times(items, rest[len(items):]))
            # MOVED: job id, owner, ... (adopted since the result was built); ask with their keys.
            owners.update((job_id.decode(), owner.decode()) for job_id, owner in zip(rest[::2], rest[1::2]))
        raise BrokerError(f"publish: owners kept moving across {self.MAX_OWNER_RETRIES} attempts")

    def _call(self, items: Sequence[Item], checkpoint: Checkpoint | None, owners: dict[str, str]):
        position = checkpoint.position if checkpoint else None
        head = [self._inflight, keys.SCHEDULERS_SET, keys.METRICS_KEY]
        if checkpoint:
            head.append(checkpoint.lease_key)
            if position:
                head.append(checkpoint.position_key)
            head.append(checkpoint.states_key)
        owner_index: dict[str, int] = {}   # scheduler id -> its position among the owners, from 1
        job_keys: list[str] = []
        item_args: list = []
        for item in items:
            result, state = item.result, item.pod_state
            if result is not None:
                owner = result.scheduler_id
                if result.state is not State.ADOPTED and owners.get(result.job_id, owner) != owner:
                    # Adopted since it was built: it goes to, and names, the new owner.
                    owner = owners[result.job_id]
                    result = replace(result, scheduler_id=owner)
                index = owner_index.setdefault(owner, len(owner_index) + 1)
                job_keys.append(keys.job_key(result.job_id))
                item_args.extend((result.job_id, result.state.value, index, result.encode()))
            else:
                item_args.extend(("", "", 0, b""))
            reason = result.pending_reason if result is not None else None
            again = result is not None and result.event_id != event_id_for(result.job_id, result.state,
                                                                            scheduler_id=result.scheduler_id)
            item_args.extend((state.field if state else "", state.value if state else "", item.pod_uid,
                              reason.fingerprint() if reason else "", "1" if again else ""))
        owner_keys = [key for owner in owner_index
                      for key in (keys.results_stream(owner), keys.scheduler_jobs_key(owner))]
        args = [repr(time.time()), checkpoint.token if checkpoint else "", position or "",
                "1" if checkpoint else "", self._ledger_ttl, keys.RESULTS_GROUP,
                len(owner_index), *owner_index, len(items), *item_args]
        try:
            pipe = self._client.pipeline(transaction=False)
            self._script(keys=[*head, *owner_keys, *job_keys], args=args, client=pipe)
            return durable(self._client, pipe)[0]
        except redis.ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise FencedError(str(exc)) from None
            raise


def _submission_times(items: Sequence[Item], values: Sequence[bytes]) -> dict[str, float]:
    """The ledger's submitted_at of each published result's job ("" where unknown: an entry recorded
    before the field existed, or a producer that set none)."""
    times = {}
    for item, value in zip(items, values):
        if item.result is not None and value:
            try:
                times[item.result.job_id] = float(value)
            except ValueError:
                continue  # a damaged field costs one latency observation, never the batch
    return times


def count_published(items: Sequence[Item], entries: Sequence[str]) -> None:
    """Results that reached a stream, by state and by the service that published them."""
    for item, entry in zip(items, entries):
        if entry and item.result is not None:
            metrics.RESULTS_PUBLISHED.labels(item.result.state.value, item.result.source.value).inc()
