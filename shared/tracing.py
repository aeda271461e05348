"""W3C trace context for jobs: one trace from submit to result.

A job may carry a ``traceparent`` (https://www.w3.org/TR/trace-context/); intake starts one for
a job that has none. It rides on the job record, goes onto the pod as the annotation
``podq.io/traceparent`` (so every result about the job carries it among its annotations), and into
JSON log lines about the job (``trace_id``, with ``job_id``). With the OpenTelemetry API installed,
podq also opens a span per step under that trace; without it, :func:`span` does nothing.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import secrets
from typing import Any

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16

# The job a thread is working on and its traceparent, for log lines (podq.logjson reads it: :func:`current`).
_current_job: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar("podq_job", default=None)


def check(value: str) -> str | None:
    """Why ``value`` is not a valid version-00 traceparent, or None when it is."""
    match = _TRACEPARENT.match(value)
    if not match:
        return "not a W3C traceparent (00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, lower case)"
    if match.group(1) == _INVALID_TRACE or match.group(2) == _INVALID_SPAN:
        return "an all-zero trace id or parent id is invalid"
    return None


def new_traceparent() -> str:
    """A fresh sampled traceparent (random trace id and parent id)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None


def current() -> tuple[str, str | None] | None:
    """The job this thread is working on (inside :func:`about_job`): its id and trace id."""
    job = _current_job.get()
    return None if job is None else (job[0], trace_id(job[1]))


class about_job:  # noqa: N801 - used as a function: ``with about_job(job_id, traceparent):``
    """Log lines written inside carry ``job_id`` and the trace id (JSON logs).

    A class rather than a generator context manager: it is entered for every job a worker
    creates, and the trace id is read only when a line is written.
    """

    __slots__ = ("_job", "_token")

    def __init__(self, job_id: str, traceparent: str | None) -> None:
        self._job = (job_id, traceparent)

    def __enter__(self) -> None:
        self._token = _current_job.set(self._job)

    def __exit__(self, *exc_info: object) -> None:
        _current_job.reset(self._token)


@functools.cache
def _opentelemetry() -> tuple[Any, Any] | None:
    """OpenTelemetry's trace API and its traceparent propagator, or None when it is not installed.

    Looked up once per process: a failed import costs ~150 µs, too much to pay for every job.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None
    return trace, TraceContextTextMapPropagator()


_NO_SPAN = contextlib.nullcontext()


def span(name: str, traceparent: str | None, **attributes: str) -> contextlib.AbstractContextManager[Any]:
    """An OpenTelemetry span named ``name`` under ``traceparent``, when a tracer provider is configured.

    Without the API, or with no provider set (the API's proxy stands in until one is), nothing:
    the API's no-op span still costs several microseconds per job.
    """
    otel = _opentelemetry()
    if otel is None:
        return _NO_SPAN
    trace, propagator = otel
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        return _NO_SPAN
    context = propagator.extract({"traceparent": traceparent}) if traceparent else None
    return provider.get_tracer("podq").start_as_current_span(name, context=context, attributes=attributes)
