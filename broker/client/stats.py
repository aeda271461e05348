"""Backlog figures as ``podq results --stats`` prints them (the figures: :mod:`podq.broker.store.stats`)."""
from __future__ import annotations

from podq.broker.store.stats import StreamStats, all_stats, known_schedulers, results_stats, stream_stats

__all__ = ["StreamStats", "all_stats", "format_stats", "known_schedulers", "results_stats", "stream_stats"]


def format_stats(stats: StreamStats) -> list[str]:
    """Lines for ``podq results --stats``."""
    head = f"{stats.stream}  length={stats.length}"
    if stats.dead is not None:
        head += f"  dead={stats.dead}"
    if stats.trimmed_unread:
        head += f"  trimmed_unread={stats.trimmed_unread}"
    lines = [head]
    for group in stats.groups:
        lines.append(f"  group {group.name}  pending={group.pending}  lag={group.lag}  "
                     f"last_delivered={group.last_delivered}  consumers={len(group.consumers)}")
        for consumer in group.consumers:
            lines.append(f"    consumer {consumer.name}  pending={consumer.pending}  idle_ms={consumer.idle_ms}")
    return lines
