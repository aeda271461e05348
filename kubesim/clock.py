"""Wall-clock helpers: the RFC 3339 second-precision timestamps every ``metav1.Time`` field uses."""

from __future__ import annotations

import time

_cache_second = -1
_cache_text = ""


def rfc3339(at: float | None = None) -> str:
    """``2026-01-01T00:00:00Z`` for ``at`` (default now), truncated to the second, UTC."""
    global _cache_second, _cache_text  # noqa: PLW0603 - a one-slot memo, not shared state
    second = int(time.time() if at is None else at)
    if second != _cache_second:
        _cache_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _cache_second = second
    return _cache_text


def initial_resource_version() -> int:
    """A time-based start for the revision counter: microseconds since the epoch.

    A restarted kubesim therefore starts above every revision its previous life handed out (no process
    writes more than once per microsecond), and treats those old revisions as compacted (410).
    """
    return time.time_ns() // 1000
