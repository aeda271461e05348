"""A custom trigger for the lifecycle matrix (tests/airflow/dags/lifecycle.py); the triggerer imports it.

Not a DAG file: it defines no DAG (the DAG processor finds none here).
"""
from __future__ import annotations

import asyncio
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class CountdownTrigger(BaseTrigger):
    """Fires once after ``seconds`` with ``{"payload": payload}``."""

    def __init__(self, seconds: float, payload: str) -> None:
        super().__init__()
        self.seconds = seconds
        self.payload = payload

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "lifecycle_triggers.CountdownTrigger", {"seconds": self.seconds, "payload": self.payload}

    async def run(self):
        await asyncio.sleep(self.seconds)
        yield TriggerEvent({"payload": self.payload})
