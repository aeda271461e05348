"""Liveness: what the running watcher reports, and what ``podq watcher --check`` reads.

The daemon rewrites a small JSON file every second or so: its pid, the time,
and per scope whether it leads it and when its watch loop last made progress
(an event, a bookmark, a list page, a (re)connect). ``--check`` passes when the
file is fresh, the process is alive, and every scope it leads made progress
within the idle limit plus a margin.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from podq.shared import metrics


def default_health_file(scopes: Sequence[str]) -> str:
    digest = hashlib.sha1(",".join(sorted(scopes)).encode()).hexdigest()[:12]
    return str(Path(tempfile.gettempdir()) / f"podq-watcher-{digest}.json")


class Health:
    """Thread-safe progress marks of one watcher process."""

    def __init__(self, path: str, *, instance: str) -> None:
        self.path = path
        self.instance = instance
        self._lock = threading.Lock()
        self._progress: dict[str, float] = {}
        self._leading: set[str] = set()

    def touch(self, scope: str) -> None:
        self._progress[scope] = now = time.time()
        metrics.WATCHER_LAST_PROGRESS.labels(scope).set(now)

    def leading(self, scope: str, leads: bool) -> None:
        with self._lock:
            if leads:
                self._leading.add(scope)
                self._progress[scope] = time.time()
            else:
                self._leading.discard(scope)

    def snapshot(self) -> dict:
        with self._lock:
            leading = sorted(self._leading)
        return {"pid": os.getpid(), "instance": self.instance, "time": time.time(),
                "scopes": {scope: {"progress": self._progress.get(scope)} for scope in leading}}

    def write(self) -> None:
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(self.snapshot(), handle)
        os.replace(temporary, self.path)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def progress_limit(settings) -> float:
    """Seconds a led scope's watch loop may go without progress (``settings``: WatcherSettings)."""
    return settings.idle_limit + settings.connect_timeout + 30.0


def check(path: str, *, max_age: float, progress_limit: float) -> tuple[bool, str]:
    """Whether the watcher that writes ``path`` is healthy, and why not."""
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except FileNotFoundError:
        return False, f"no health file at {path} (is the watcher running?)"
    except (OSError, ValueError) as exc:
        return False, f"unreadable health file {path}: {exc}"
    age = time.time() - float(report.get("time") or 0)
    if age > max_age:
        return False, f"health file is {age:.0f} s old (limit {max_age:.0f} s)"
    return check_report(report, progress_limit=progress_limit)


def check_report(report: dict, *, progress_limit: float) -> tuple[bool, str]:
    """Whether the watcher of ``report`` (:meth:`Health.snapshot`) is healthy: its process is alive and
    every scope it leads made progress within ``progress_limit`` seconds. The running watcher answers
    GET /healthz with it from memory; ``--check`` with the file."""
    now = time.time()
    pid = int(report.get("pid") or 0)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, f"watcher process {pid} is gone"
    except PermissionError:
        pass
    for scope, info in (report.get("scopes") or {}).items():
        progress = info.get("progress")
        if progress is None or now - progress > progress_limit:
            return False, f"scope {scope}: the watch loop made no progress for {now - (progress or 0):.0f} s"
    leading = ", ".join(report.get("scopes") or {}) or "nothing (standby)"
    return True, f"watcher {report.get('instance')} (pid {pid}) healthy; leading {leading}"
