"""Lines the executor writes into a task try's own log file, before the task writes there itself.

Airflow 3 reads a queued task's log only from files (``[logging] base_log_folder`` and remote
logging): it asks the executor's ``get_task_log`` only while the task is running. So what podq learns
before the task starts — why its pod waits, what ended a launch that never ran (apache/airflow
#12264, #29025) — is appended, as Airflow's own structured JSON lines, to the file the workload names
(``ExecuteTask.log_path``, relative to ``base_log_folder``): the API server shows it as the task's log
while it is queued, and the task's own lines follow when it runs (Airflow's supervisor appends to the
same file). This reaches the API server where the scheduler and the API server share the log folder
(the shared-volume setup); the task instance's event log gets every line too, whatever the setup.

No Airflow import: unit-tested on its own (tests/unit/test_airflow_tasklog.py).
"""
from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Iterable

import orjson

log = logging.getLogger(__name__)
LOGGER_NAME = "podq.airflow.executor"


class TaskLogFiles:
    """Appends podq's lines to task log files under one base folder; never raises."""

    def __init__(self, base_folder: str | os.PathLike) -> None:
        self.base = Path(base_folder).resolve()

    def path_of(self, log_path: str) -> Path | None:
        """The file for a workload's relative ``log_path``; None when it would leave the base folder."""
        path = (self.base / log_path).resolve()
        return path if path.is_relative_to(self.base) and path != self.base else None

    def append(self, log_path: str | None, lines: Iterable[str], *, level: str = "info") -> bool:
        """Add ``lines`` to the task's log file, one structured record each; True when written."""
        if not log_path:
            return False
        path = self.path_of(log_path)
        if path is None:
            log.warning("task log path %r leaves %s; not written", log_path, self.base)
            return False
        now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        records = b"".join(orjson.dumps({"timestamp": now, "level": level, "event": line, "logger": LOGGER_NAME})
                           + b"\n" for line in lines)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as out:
                out.write(records)
        except OSError as exc:
            log.warning("writing podq's lines to the task log %s failed: %s", path, exc)
            return False
        return True
