"""A cluster's waiting lines: jobs admitted while the cluster's create capacity is taken.

While the create budget has room, intake pushes admitted jobs to the Celery queue at once. When it
has none, the jobs wait here instead of in one first-come-first-served queue: one line per
scheduler (``podq:waiting:<cluster>:line:<scheduler>``, highest priority first, then first come),
and the schedulers that have a line in ``podq:waiting:<cluster>`` with their *pass*, the service
each has had divided by its weight (stride scheduling). Intake's dispatcher
(:mod:`podq.broker.intake.dispatcher`) keeps a fraction of a second of the budget dispatched (``PODQ_INTAKE_DISPATCH_AHEAD``) and
takes the next jobs from the lines with the lowest passes.

A waiting job is ``waiting`` in the ledger; ``lua/wait.lua`` moves it there and into its line in one
step, ``lua/dispatch_waiting.lua`` moves it out and to ``dispatched`` in one step, so a crash leaves
every job either in its line or dispatched (and, if its message was not pushed yet, found by the
orphan sweep like any dispatched job whose message vanished).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import redis

from podq.shared.records import KubernetesJob

from . import keys
from .scripts import scripts_for


@dataclass(frozen=True, kw_only=True)
class Line:
    """One scheduler's line, as the dispatcher plans with it."""

    scheduler: str
    waiting: int
    pass_: float
    """The service the scheduler has had over its weight (the lowest goes next)."""
    in_flight: int = 0
    """The scheduler's jobs released and not yet ended (only read when a cap applies)."""


@dataclass(frozen=True, kw_only=True)
class Lines:
    """A cluster's lines and the jobs dispatched ahead of the workers, read in one round trip."""

    lines: tuple[Line, ...]
    dispatched: int
    """Jobs dispatched and neither created nor ended, less those resting in the delayed set."""

    @property
    def waiting(self) -> int:
        return sum(line.waiting for line in self.lines)


def _member_job_id(member: bytes) -> str:
    return member.split(b":", 1)[1].decode()


class WaitingLines:
    """One cluster's waiting lines."""

    def __init__(self, client: redis.Redis, *, cluster: str, recorded: str | None = None) -> None:
        """``cluster``: the cluster's name; ``recorded``: the same as records hold it (None: the
        default cluster), whose in-flight and delayed sets count what is dispatched ahead."""
        self._inflight = keys.inflight_key(recorded)
        self._delayed = keys.delayed_key(recorded)
        self.cluster = cluster
        self.key = keys.waiting_key(cluster)
        self._client = client
        self._scripts = scripts_for(client)

    def add(self, jobs: Sequence[KubernetesJob]) -> list[bool]:
        """Put ``accepted`` jobs in their lines (``lua/wait.lua``); per job, True when it waits now."""
        if not jobs:
            return []
        job_keys = [self.key, keys.waiting_seq_key(self.cluster), keys.CLUSTERS_SET]
        args: list = [self.cluster]
        for job in jobs:
            job_keys += (keys.job_key(job.job_id), keys.waiting_line_key(self.cluster, job.scheduler_id))
            args += (job.job_id, job.scheduler_id, job.priority)
        return [bool(flag) for flag in self._scripts.wait(keys=job_keys, args=args)]

    def any_waiting(self) -> bool:
        return bool(self._client.exists(self.key))

    def read(self, *, in_flight_of: Callable[[str], bool] = lambda _scheduler: False) -> Lines:
        """Every line's length and pass, and what is dispatched ahead; ``in_flight_of``: which
        schedulers' jobs in flight are counted too (those a cap applies to)."""
        passes = self._client.zrange(self.key, 0, -1, withscores=True)
        pipe = self._client.pipeline(transaction=False)
        pipe.zcard(self._inflight)
        pipe.zcard(self._delayed)
        names = [name.decode() for name, _ in passes]
        for name in names:
            pipe.zcard(keys.waiting_line_key(self.cluster, name))
        capped = [name for name in names if in_flight_of(name)]
        for name in capped:
            pipe.scard(keys.scheduler_jobs_key(name))
        replies = pipe.execute()
        in_flight, delayed, lengths = replies[0], replies[1], replies[2:2 + len(names)]
        live = dict(zip(capped, replies[2 + len(names):]))
        lines = tuple(Line(scheduler=name, waiting=int(length), pass_=float(score),
                           in_flight=max(0, int(live.get(name, 0)) - int(length)))
                      for name, (_, score), length in zip(names, passes, lengths))
        return Lines(lines=lines, dispatched=max(0, int(in_flight) - int(delayed)))

    def dispatched_ahead(self) -> int:
        """Jobs dispatched and neither created nor ended, less those in the delayed set (one round trip)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.zcard(self._inflight)
        pipe.zcard(self._delayed)
        in_flight, delayed = pipe.execute()
        return max(0, int(in_flight) - int(delayed))

    def take(self, counts: Mapping[str, int], *, weights: Mapping[str, float], orphaned_after: float,
             attempts: int = 5) -> list[bytes]:
        """Dispatch up to ``counts[scheduler]`` jobs from the head of each line; their records.

        The heads are read first, then taken in one script call that checks they are still the
        heads (``lua/dispatch_waiting.lua``): a job of higher priority that joined meanwhile is not
        passed over, and two dispatchers at once never both take a job. When they moved, they are
        read again (``attempts`` times at most; then nothing is taken this time).
        """
        chosen = [(name, count) for name, count in counts.items() if count > 0]
        if not chosen:
            return []
        line_keys = [keys.waiting_line_key(self.cluster, name) for name, _ in chosen]
        for _ in range(attempts):
            pipe = self._client.pipeline(transaction=False)
            for line, (_, count) in zip(line_keys, chosen):
                pipe.zrange(line, 0, count - 1)
            heads = pipe.execute()
            members = [member for head in heads for member in head]
            args: list = [orphaned_after, len(chosen)]
            for (name, _), head in zip(chosen, heads):
                args += (name, weights.get(name, 1.0), len(head))
            reply = self._scripts.dispatch_waiting(
                keys=[self.key, self._inflight, keys.METRICS_KEY, *line_keys,
                      *(keys.job_key(_member_job_id(m)) for m in members)],
                args=[*args, *members])
            if int(reply[0]) == 1:
                return list(reply[1:])
        return []

def waiting_by_scheduler(client: redis.Redis, cluster: str) -> dict[str, int]:
    """How many jobs wait in each scheduler's line for ``cluster`` (for `podq status` and the gauges)."""
    names = [name.decode() for name in client.zrange(keys.waiting_key(cluster), 0, -1)]
    if not names:
        return {}
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.zcard(keys.waiting_line_key(cluster, name))
    return dict(zip(names, (int(count) for count in pipe.execute())))
