"""Tracing: off costs nothing and carries nothing; on, a lead's work is one trace through a
consumer batch, its decisions and what they send on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from leadrelay_shared import tracing
from leadrelay_shared.logging import add_trace_id, configure

PRODUCER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_provider", None)
    monkeypatch.setattr(tracing, "_tracer", trace.NoOpTracer())
    tracing.install(provider)
    yield exporter
    provider.shutdown()


def received(lead: str, traceparent: str | None, offset: int = 0) -> tracing.Received:
    return tracing.Received(
        lead,
        f"event-{offset}",
        "io.leadrelay.stage.changed",
        "leadrelay.scoring.v1",
        0,
        offset,
        traceparent.encode() if traceparent else None,
    )


def test_the_environment_turns_tracing_on() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )


def test_off_nothing_is_recorded_or_carried() -> None:
    assert not tracing.enabled()
    with tracing.consume("router", [received("lead-1", PRODUCER)]):
        with tracing.span("router.decide", "lead-1") as span:
            assert not span.is_recording()
        assert tracing.carry("lead-1") is None
    assert tracing.current_traceparent() is None
    assert tracing.span("x", "lead-1") is tracing.span("y", "lead-2")  # one shared no-op


def test_a_record_continues_its_producers_trace_and_the_decision_is_carried_on(
    spans: InMemorySpanExporter,
) -> None:
    records = [
        received("lead-1", PRODUCER),
        received("lead-2", None, 1),
        received("lead-1", None, 2),
    ]
    with tracing.consume("router", records):
        # the decision descends from the record it decides on, not from the lead's later one
        with tracing.span(
            "router.decide", "lead-1", "event-0", **{"leadrelay.routing.rep": "a"}
        ) as made:
            assert made.is_recording()
        carried = tracing.carry("lead-1")
        other = tracing.carry("lead-2")
    assert tracing.carry("lead-1") is None  # the scope ended with the batch
    by_name = {s.name: s for s in spans.get_finished_spans()}
    batch = by_name["router process"]
    record = next(
        s
        for s in spans.get_finished_spans()
        if s.name == "io.leadrelay.stage.changed process"
        and s.attributes is not None
        and s.attributes["messaging.kafka.offset"] == 0
    )
    decide = by_name["router.decide"]
    producer_trace = int("0af7651916cd43dd8448eb211c80319c", 16)
    assert record.context is not None and decide.context is not None
    assert record.context.trace_id == producer_trace
    assert record.parent is not None and record.parent.span_id == int("b7ad6b7169203331", 16)
    assert decide.parent is not None and decide.parent.span_id == record.context.span_id
    assert decide.context.trace_id == producer_trace
    assert carried == f"00-{producer_trace:032x}-{decide.context.span_id:016x}-01"
    # the batch span is a trace of its own, linked to the producer of each record it has
    assert batch.context is not None and batch.context.trace_id != producer_trace
    assert [link.context.span_id for link in batch.links] == [int("b7ad6b7169203331", 16)]
    # a record that came without a trace hangs under the batch
    assert other is not None and f"{batch.context.trace_id:032x}" in other


def test_a_stored_context_is_resumed_in_a_job(spans: InMemorySpanExporter) -> None:
    with tracing.scope():
        tracing.resume("lead-1", PRODUCER)
        tracing.resume("lead-2", "not a traceparent")
        with tracing.span("sla.alert", "lead-1", **{"leadrelay.sla.level": "breach"}):
            assert tracing.trace_id_for("lead-1") == "0af7651916cd43dd8448eb211c80319c"
        with tracing.span("sla.alert", "lead-2") as made:
            assert made.is_recording()
    first, second = spans.get_finished_spans()
    assert first.parent is not None and first.parent.span_id == int("b7ad6b7169203331", 16)
    assert first.attributes == {"leadrelay.sla.level": "breach", "leadrelay.lead_id": "lead-1"}
    assert second.parent is None  # nothing valid to resume: a trace of its own


def test_a_remote_span_continues_a_stored_traceparent(spans: InMemorySpanExporter) -> None:
    with tracing.remote_span("io.leadrelay.lead.assigned deliver", PRODUCER) as span:
        assert span.is_recording()
        sent = tracing.current_traceparent()
    with tracing.remote_span("x", None) as nothing:
        assert not nothing.is_recording()
    (one,) = spans.get_finished_spans()
    assert one.context is not None
    assert sent == f"00-0af7651916cd43dd8448eb211c80319c-{one.context.span_id:016x}-01"


def test_a_failed_batch_marks_its_record_spans(spans: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), tracing.consume("scoring", [received("lead-1", PRODUCER)]):
        raise RuntimeError("deadlock")
    statuses = {s.name: s.status.status_code for s in spans.get_finished_spans()}
    assert statuses["io.leadrelay.stage.changed process"] == trace.StatusCode.ERROR


def test_log_lines_name_their_trace(spans: InMemorySpanExporter) -> None:
    configure("router")
    try:
        assert add_trace_id in structlog.get_config()["processors"]
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
    with tracing.consume("router", [received("lead-1", PRODUCER)]):
        line = add_trace_id(None, "info", {"event": "decided", "lead_id": "lead-1"})
        other = add_trace_id(None, "info", {"event": "decided", "lead_id": "lead-9"})
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    # a lead the batch has no record of: the batch's own trace, which is current
    batch = next(s for s in spans.get_finished_spans() if s.name == "router process")
    assert batch.context is not None
    assert other["trace_id"] == f"{batch.context.trace_id:032x}"


def test_log_lines_carry_no_trace_when_tracing_is_off() -> None:
    with tracing.consume("router", [received("lead-1", PRODUCER)]):
        assert add_trace_id(None, "info", {"lead_id": "lead-1"}) == {"lead_id": "lead-1"}
