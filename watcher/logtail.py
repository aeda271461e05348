"""The last lines of a failed pod's log in its job's failure details (opt-in: ``PODQ_WATCHER_FAILURE_LOG_LINES``).

A pod whose failing container started (it terminated with an exit code) may have said why in its log:
an image whose entrypoint cannot start the task, an import error before the task began (apache/airflow
#29025, "logs for tasks that failed to launch"). The watcher reads that container's last lines once,
when it publishes the failure, before the completion policy may delete the pod; the scheduler gets
them as ``failure_details.log_tail``. A read that fails leaves the details as they are. Pure logic
around one callable; the read itself is :meth:`podq.watcher.kube.KubePods.tail_log`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from podq.shared.naming import MAIN_CONTAINER
from podq.shared.records import MAX_FAILURE_LOG_LINES, FailureDetails
from podq.shared.states import State

from .tracker import Intent

# (namespace, pod name, container, lines) -> the container's last lines, or None when they cannot be read
ReadTail = Callable[[str, str, str, int], "list[str] | None"]


def started(details: FailureDetails) -> bool:
    """True when the failing container ran: it terminated with an exit code."""
    return details.container_state == "terminated" and details.exit_code is not None


def add_log_tails(intents: Sequence[Intent], *, read: ReadTail, lines: int) -> int:
    """Put the last ``lines`` (at most the wire's ``MAX_FAILURE_LOG_LINES``) of the failing container's log
    into each failed intent's details; how many got them."""
    added = 0
    lines = min(lines, MAX_FAILURE_LOG_LINES)
    if lines <= 0:
        return added
    for intent in intents:
        details = intent.details
        if intent.state not in (State.FAILED, State.LOST) or details is None or details.log_tail \
                or not started(details):
            continue
        tail = read(intent.namespace, intent.pod_name, details.container_name or MAIN_CONTAINER, lines)
        if tail:
            intent.details = replace(details, log_tail=tuple(tail[-lines:]))
            added += 1
    return added
