"""`podq results`: read a scheduler's results stream, or show the backlog of podq's streams."""
from __future__ import annotations

import threading

from podq.broker.client.results import ResultsConsumer
from podq.broker.client.stats import all_stats, format_stats, results_stats
from podq.shared.errors import SettingsError
from podq.shared.loops import stop_on_signals

from ._common import redis_from


def register(subparsers) -> None:
    parser = subparsers.add_parser("results", help="read (and acknowledge) a scheduler's results")
    parser.add_argument("--scheduler-id", help="whose results (required unless --stats)")
    parser.add_argument("--consumer", help="consumer name (stable across restarts); default from host")
    parser.add_argument("--follow", action="store_true", help="keep reading until interrupted")
    parser.add_argument("--no-ack", action="store_true", help="leave the results pending")
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


def print_stats(client, scheduler_id: str | None) -> int:
    streams = [results_stats(client, scheduler_id)] if scheduler_id else all_stats(client)
    for stats in streams:
        for line in format_stats(stats):
            print(line)
    return 0


def run(args, settings) -> int:
    if args.stats:
        return print_stats(redis_from(settings), args.scheduler_id)
    if not args.scheduler_id:
        raise SettingsError("--scheduler-id is required (or use --stats)")
    client = redis_from(settings, block_ms=settings.results.block_ms)
    consumer = ResultsConsumer.from_settings(client, settings.results, scheduler_id=args.scheduler_id,
                                             consumer=args.consumer)
    stop = threading.Event()
    stop_on_signals(stop)
    while not stop.is_set():
        batch = consumer.read(block_ms=settings.results.block_ms if args.follow else 0)
        for result in batch:
            print(format_result(result), flush=True)
        if batch and not args.no_ack:
            consumer.ack(batch)
        if not batch and not args.follow:
            break
    return 0
