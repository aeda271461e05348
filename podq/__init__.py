"""podq: launch Kubernetes pods for a scheduler through Redis and Celery.

The public Python API is what ``podq.__all__`` names (docs/api.md says what each does and what stays
stable); every deeper module path is internal. The names load on first use (PEP 562), so
``import podq`` stays cheap for the services and the CLI, which import it first.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The one place podq's version is written: pyproject.toml reads it from here (setuptools' ``attr:``),
# `podq --version` prints it, CHANGELOG.md names it.
__version__ = "0.1.0"

# name -> the internal module that defines it
_PUBLIC = {
    # reaching Redis
    "connect": "podq.broker.store.connection",
    "Client": "podq.broker.store.connection",
    # producing jobs
    "KubernetesJob": "podq.shared.records",
    "TaskKey": "podq.shared.records",
    "submit": "podq.broker.client.submit",
    "submit_many": "podq.broker.client.submit",
    "SubmitError": "podq.broker.client.submit",
    # reading results
    "ResultsConsumer": "podq.broker.client.results",
    "KubernetesResults": "podq.shared.records",
    "FailureDetails": "podq.shared.records",
    "State": "podq.shared.states",
    # operating on jobs
    "revoke": "podq.broker.client.control",
    "send_control": "podq.broker.client.control",
    "ControlRecord": "podq.shared.records",
    "ControlOp": "podq.shared.states",
    "job_status": "podq.broker.client.jobs",
    "JobStatus": "podq.broker.client.jobs",
    # errors
    "PodqError": "podq.shared.errors",
    "SettingsError": "podq.shared.errors",
    "DecodeError": "podq.shared.errors",
}

__all__ = sorted(_PUBLIC)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads each on first use
    from podq.broker.client.control import revoke, send_control
    from podq.broker.client.jobs import JobStatus, job_status
    from podq.broker.client.results import ResultsConsumer
    from podq.broker.client.submit import SubmitError, submit, submit_many
    from podq.broker.store.connection import Client, connect
    from podq.shared.errors import DecodeError, PodqError, SettingsError
    from podq.shared.records import ControlRecord, FailureDetails, KubernetesJob, KubernetesResults, TaskKey
    from podq.shared.states import ControlOp, State


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'podq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value   # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
