"""A JSON log formatter for `podq --log-json`."""
from __future__ import annotations

import json
import logging

from podq.shared.tracing import current


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "process": record.processName, "message": record.getMessage()}
        job = current()
        if job is not None:
            entry["job_id"], trace = job
            if trace:
                entry["trace_id"] = trace
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)
