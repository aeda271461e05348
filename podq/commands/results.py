"""`podq results`: look at a scheduler's results (or consume them), or show the backlog of podq's streams.

By default it peeks: it reads the stream outside any consumer group, so the scheduler's own group keeps
every result for the scheduler. ``--consume`` reads and acknowledges in the scheduler's group, as the
scheduler does, and warns when another consumer of that group is at work.
"""
from __future__ import annotations

import sys

from podq.broker.client.results import ResultsConsumer, ResultsPeek
from podq.broker.client.stats import all_stats, format_stats, known_schedulers, results_stats
from podq.broker.store import keys
from podq.shared.errors import SettingsError

from ._common import Interrupt, redis_from

# A consumer of the group that read within this long is taken to be at work.
ACTIVE_MS = 60_000


def register(subparsers) -> None:
    parser = subparsers.add_parser("results", help="show a scheduler's results (peek; --consume to take them)")
    parser.add_argument("--scheduler-id", help="whose results (required unless --stats)")
    parser.add_argument("--follow", action="store_true", help="keep reading until interrupted")
    parser.add_argument("--consume", action="store_true",
                        help="read and acknowledge in the scheduler's consumer group, taking the results "
                             "from the scheduler (default: peek, leaving the group untouched)")
    parser.add_argument("--consumer", help="with --consume: consumer name (stable across restarts); default from host")
    parser.add_argument("--no-ack", action="store_true", help="with --consume: leave the results pending")
    parser.add_argument("--stats", action="store_true",
                        help="print pending counts and lag per group (of one scheduler, or of every stream)")
    parser.set_defaults(run=run)


def format_result(result) -> str:
    details = result.failure_details
    reason = ""
    if details is not None:
        reason = " " + " ".join(str(part) for part in (details.reason or details.container_reason or details.pod_reason,
                                                       details.message or details.container_message or details.pod_message)
                                if part)
    return (f"{result.entry_id} {result.job_id} {result.state.value:<9} {result.key} "
            f"pod={result.namespace}/{result.pod_name}{reason}")


def unknown_scheduler(client, scheduler_id: str) -> str | None:
    """Why ``scheduler_id`` has no results stream (a typo, most likely), or None when it has one."""
    known = known_schedulers(client)
    if scheduler_id in known:
        return None
    listed = ", ".join(known[:20]) + (", …" if len(known) > 20 else "") if known else "none yet"
    return (f"no scheduler {scheduler_id!r}: podq has no results stream {keys.results_stream(scheduler_id)} "
            f"(known schedulers: {listed})")


def print_stats(client, scheduler_id: str | None) -> int:
    if scheduler_id:
        unknown = unknown_scheduler(client, scheduler_id)
        if unknown:
            print(f"podq results: {unknown}", file=sys.stderr)
            return 1
    streams = [results_stats(client, scheduler_id)] if scheduler_id else all_stats(client)
    for stats in streams:
        for line in format_stats(stats):
            print(line)
    return 0


def warn_other_consumers(client, scheduler_id: str, consumer: str) -> None:
    stats = results_stats(client, scheduler_id)
    others = [item for group in stats.groups if group.name == keys.RESULTS_GROUP for item in group.consumers
              if item.name != consumer and (item.pending or item.idle_ms < ACTIVE_MS)]
    if others:
        names = ", ".join(f"{item.name} (pending {item.pending}, idle {item.idle_ms / 1000:.0f} s)" for item in others)
        print(f"podq results: warning: consuming in group {keys.RESULTS_GROUP!r} of {stats.stream}, which "
              f"another consumer uses: {names}; the results this command acknowledges never reach it",
              file=sys.stderr)


def run(args, settings) -> int:
    if args.stats:
        return print_stats(redis_from(settings), args.scheduler_id)
    if not args.scheduler_id:
        raise SettingsError("--scheduler-id is required (or use --stats)")
    if (args.consumer or args.no_ack) and not args.consume:
        raise SettingsError("--consumer and --no-ack go with --consume (the default peek takes nothing)")
    client = redis_from(settings, block_ms=settings.results.block_ms)
    unknown = unknown_scheduler(client, args.scheduler_id)
    if unknown and not args.consume:
        print(f"podq results: {unknown}", file=sys.stderr)
        return 1
    interrupt = Interrupt()
    if args.consume:
        if unknown:   # the scheduler itself, before its first job: its stream and group are made now
            print(f"podq results: {unknown}; creating it for --consume", file=sys.stderr)
        consumer = ResultsConsumer.from_settings(client, settings.results, scheduler_id=args.scheduler_id,
                                                 consumer=args.consumer)
        warn_other_consumers(client, args.scheduler_id, consumer.consumer)
        read = lambda block_ms: consumer.read(block_ms=block_ms)  # noqa: E731
    else:
        peek = ResultsPeek(client, scheduler_id=args.scheduler_id, batch_size=settings.results.batch_size)
        read = lambda block_ms: peek.read(block_ms=block_ms)  # noqa: E731
    while not interrupt.is_set():
        batch = read(settings.results.block_ms if args.follow else 0)
        for result in batch:
            print(format_result(result), flush=True)
        if batch and args.consume and not args.no_ack:
            consumer.ack(batch)
        if not batch and not args.follow:
            break
    return interrupt.exit_code()
