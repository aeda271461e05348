"""A custom trigger for the lifecycle matrix (tests/airflow/dags/lifecycle.py); the triggerer imports it.

Not a DAG file: it defines no DAG (the DAG processor finds none here).
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class CountdownTrigger(BaseTrigger):
    """Fires once after ``seconds`` with ``{"payload": payload}``.

    With ``kill_mark`` (a path under the triggerer's AIRFLOW_HOME), ``on_kill`` writes that file: Airflow
    calls it in the triggerer when a user clears or marks the deferred task, the deferral's counterpart
    of an operator's ``on_kill`` (no task process exists while a task is deferred).
    """

    def __init__(self, seconds: float, payload: str, kill_mark: str | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.payload = payload
        self.kill_mark = kill_mark

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "lifecycle_triggers.CountdownTrigger", {"seconds": self.seconds, "payload": self.payload,
                                                       "kill_mark": self.kill_mark}

    async def run(self):
        await asyncio.sleep(self.seconds)
        yield TriggerEvent({"payload": self.payload})

    async def on_kill(self) -> None:
        if self.kill_mark:
            path = Path(os.environ["AIRFLOW_HOME"]) / self.kill_mark
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("on_kill")
