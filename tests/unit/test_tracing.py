"""W3C trace context on jobs: validation, the record field, JSON log fields, and OpenTelemetry spans."""
from __future__ import annotations

import json
import logging

import pytest

from podq.logjson import JsonFormatter
from podq.shared import naming, tracing
from podq.shared.errors import DecodeError
from podq.shared.records import KubernetesJob, KubernetesWatch, TaskKey
from podq.shared.states import Source, State

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
KEY = TaskKey(dag_id="d", task_id="t", run_id="r")


@pytest.mark.parametrize("value", [
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        # no flags
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     # upper case
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     # all-zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     # all-zero parent id
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     # unknown version
    "",
])
def test_a_malformed_traceparent_is_refused_by_name(value):
    assert tracing.check(value)
    job = KubernetesJob.new(scheduler_id="s", key=KEY, command=["true"], traceparent=value)
    with pytest.raises(DecodeError, match=r"^job\.traceparent: "):
        KubernetesJob.decode(job.encode())


def test_a_job_keeps_its_traceparent_and_one_without_has_none_on_the_wire():
    job = KubernetesJob.new(scheduler_id="s", key=KEY, command=["true"], traceparent=PARENT)
    assert tracing.check(PARENT) is None
    assert KubernetesJob.decode(job.encode()).traceparent == PARENT
    plain = KubernetesJob.new(scheduler_id="s", key=KEY, command=["true"])
    assert "traceparent" not in plain.to_wire()
    assert KubernetesJob.decode(plain.encode()).traceparent is None


def test_new_traceparents_are_valid_and_distinct():
    made = {tracing.new_traceparent() for _ in range(100)}
    assert len(made) == 100 and all(tracing.check(value) is None for value in made)
    assert tracing.trace_id(PARENT) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.trace_id("garbage") is None


def test_a_result_reads_the_traceparent_from_its_annotations():
    annotations = {**naming.pod_annotations(job_id="j", scheduler_id="s", key=KEY), naming.TRACEPARENT: PARENT}
    result = KubernetesWatch.build(job_id="j", scheduler_id="s", key=KEY, source=Source.WATCHER,
                                   state=State.RUNNING, annotations=annotations)
    assert KubernetesWatch.decode(result.encode()).traceparent == PARENT


def _line(message: str) -> dict:
    record = logging.LogRecord("podq.test", logging.INFO, __file__, 1, message, (), None)
    return json.loads(JsonFormatter().format(record))


def test_json_log_lines_about_a_job_carry_its_id_and_trace_id():
    with tracing.about_job("job-1", PARENT):
        inside = _line("creating")
    outside = _line("idle")
    assert inside["job_id"] == "job-1" and inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "job_id" not in outside and "trace_id" not in outside


def test_spans_join_the_jobs_trace_when_opentelemetry_is_installed():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = trace.get_tracer_provider
    trace.get_tracer_provider = lambda: provider  # the global provider can be set only once per process
    try:
        with tracing.span("podq.create", PARENT, job_id="job-1"):
            pass
        with tracing.span("podq.create", None, job_id="job-2"):
            pass
    finally:
        trace.get_tracer_provider = original
    first, second = exporter.get_finished_spans()
    assert first.name == "podq.create" and first.attributes["job_id"] == "job-1"
    assert format(first.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(first.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert second.parent is None


def test_with_no_tracer_provider_configured_a_span_is_not_even_started(monkeypatch):
    from opentelemetry import trace

    started = []
    monkeypatch.setattr(trace.ProxyTracerProvider, "get_tracer",
                        lambda self, *args, **kwargs: started.append(args) or trace.NoOpTracer())
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    with tracing.span("podq.create", PARENT, job_id="job-1"):
        pass
    assert started == []


def test_without_opentelemetry_a_span_does_nothing(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_otel(name, *args, **kwargs):
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_otel)
    tracing._opentelemetry.cache_clear()
    try:
        ran = []
        with tracing.span("podq.create", PARENT, job_id="j"):
            ran.append(True)
        assert ran == [True]
        assert tracing._opentelemetry() is None
    finally:
        tracing._opentelemetry.cache_clear()   # later tests find the real API again
