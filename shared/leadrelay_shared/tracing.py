"""OpenTelemetry traces: one trace per lead, from the form fill to the webhook and the SLA alert.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set: spans go out over OTLP/HTTP in the background, and the standard ``OTEL_*`` variables
(service name, sampler, batch delays) apply. When it is not set, every function here returns at
once and nothing is carried, so the hot path pays nothing.

The context travels with the lead, as the W3C ``traceparent``: in Kafka as the CloudEvents
distributed-tracing extension (header ``ce_traceparent``), in PostgreSQL beside whatever waits
to be done later (an outbox row, a webhook delivery, an SLA clock). Handlers work on batches of
many leads, so within one batch or job tick (``scope``) each record's context is kept by event id
and each lead's latest by lead id: ``span`` starts a lead's span as a child of the record it
handles (or of the lead's latest) and makes it the lead's latest, and ``carry`` gives the
``traceparent`` to store or send on with what is written for the lead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

HEADER = "ce_traceparent"
"""The Kafka header of the CloudEvents distributed-tracing extension (binary mode)."""

_PROPAGATOR = TraceContextTextMapPropagator()
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# a batch span links to at most this many records' spans (each record has its own span too)
MAX_LINKS = 128

_provider: Any = None
_tracer: trace.Tracer = trace.NoOpTracer()


@dataclass
class _Scope:
    leads: dict[str, Context] = field(default_factory=dict)  # each lead's latest context
    events: dict[str, Context] = field(default_factory=dict)  # each record's, by event id


_scope: ContextVar[_Scope | None] = ContextVar("leadrelay_trace_scope", default=None)


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (an OTLP endpoint, and the SDK not disabled)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name) for name in _ENDPOINT_VARIABLES)


def configure(service: str) -> bool:
    """Export this process's spans over OTLP/HTTP if the environment asks for it; once per
    process (the first service named is the resource's ``service.name`` unless
    ``OTEL_SERVICE_NAME`` says otherwise). True when tracing is on."""
    if _provider is not None:
        return True
    if not wanted():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": f"leadrelay-{service}", "service.namespace": "leadrelay"}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    return True


def install(provider: Any) -> None:
    """Trace through ``provider`` (an SDK ``TracerProvider``); tests give one exporting to
    memory."""
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("leadrelay")


def shutdown() -> None:
    """Send the spans still buffered (at a service's stop)."""
    if _provider is not None:
        _provider.force_flush()


def enabled() -> bool:
    return _provider is not None


def provider() -> Any:
    """The SDK's tracer provider, when tracing is on (for an instrumentation library)."""
    return _provider


def tracer() -> trace.Tracer:
    return _tracer


def extract(traceparent: str | bytes | None) -> Context | None:
    """The context a ``traceparent`` names, or None for none (or one that does not parse)."""
    if not traceparent:
        return None
    value = traceparent.decode(errors="replace") if isinstance(traceparent, bytes) else traceparent
    ctx = _PROPAGATOR.extract({"traceparent": value})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def traceparent_of(ctx: Context | None = None) -> str | None:
    """The ``traceparent`` of ``ctx`` (the current context when None), or None without a span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return carrier.get("traceparent")


def current_traceparent() -> str | None:
    """The ``traceparent`` to send with what the current request or span produces."""
    return traceparent_of() if _provider is not None else None


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Keep each lead's context apart for one batch or one job tick."""
    if _provider is None:
        yield
        return
    token = _scope.set(_Scope())
    try:
        yield
    finally:
        _scope.reset(token)


def resume(lead_id: str, traceparent: str | bytes | None) -> None:
    """Continue a lead's trace from a stored ``traceparent`` (a clock or delivery read back)."""
    current = _scope.get()
    if current is not None and (ctx := extract(traceparent)) is not None:
        current.leads[lead_id] = ctx


def carry(lead_id: str) -> str | None:
    """The ``traceparent`` to store or send with what is done for ``lead_id`` in this scope."""
    current = _scope.get()
    if current is None or (ctx := current.leads.get(lead_id)) is None:
        return None
    return traceparent_of(ctx)


def context_of(lead_id: str | None) -> Context | None:
    """The lead's context in this scope, if it has one."""
    current = _scope.get()
    if current is None or lead_id is None:
        return None
    return current.leads.get(lead_id)


_OFF: contextlib.AbstractContextManager[Span] = contextlib.nullcontext(trace.INVALID_SPAN)


def span(
    name: str, lead_id: str, cause: object = None, **attributes: Any
) -> contextlib.AbstractContextManager[Span]:
    """A span for work done for one lead, a child of the record of event ``cause`` when given,
    else of the lead's latest context in this scope (a root when it has none); from then on the
    lead's work descends from it. Outside a scope, or with tracing off, a span that records
    nothing."""
    current = _scope.get()
    if current is None:
        return _OFF
    return _lead_span(current, name, lead_id, cause, attributes)


@contextlib.contextmanager
def _lead_span(
    current: _Scope, name: str, lead_id: str, cause: object, attributes: dict[str, Any]
) -> Iterator[Span]:
    parent = current.events.get(str(cause)) if cause is not None else None
    attributes["leadrelay.lead_id"] = lead_id
    with _tracer.start_as_current_span(
        name,
        context=parent or current.leads.get(lead_id) or Context(),
        attributes=_clean(attributes),
    ) as made:
        current.leads[lead_id] = trace.set_span_in_context(made)
        yield made


def remote_span(
    name: str, traceparent: str | None, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any
) -> contextlib.AbstractContextManager[Span]:
    """A span continuing a stored ``traceparent`` (a webhook attempt, say); records nothing
    with tracing off or without one."""
    parent = extract(traceparent) if _provider is not None else None
    if parent is None:
        return _OFF
    return _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=_clean(attributes)
    )


@dataclass(frozen=True)
class Received:
    """A record a consumer decoded, as its trace needs it."""

    lead_id: str
    event_id: str
    event_type: str
    topic: str
    partition: int
    offset: int
    traceparent: bytes | None


@contextlib.contextmanager
def consume(group: str, records: Sequence[Received]) -> Iterator[None]:
    """One consumer batch: a span for the batch, linked to the spans that produced its records,
    and one span per record continuing its producer's trace (each lead's context in the scope,
    for the decisions and what they emit)."""
    if _provider is None:
        yield
        return
    parents = [extract(r.traceparent) for r in records]
    links = [
        Link(trace.get_current_span(ctx).get_span_context())
        for ctx in parents[:MAX_LINKS]
        if ctx is not None
    ]
    with scope():
        current = _scope.get()
        assert current is not None
        with _tracer.start_as_current_span(
            f"{group} process",
            context=Context(),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.consumer.group.name": group,
                "messaging.batch.message_count": len(records),
            },
        ) as batch:
            batch_ctx = trace.set_span_in_context(batch)
            spans = []
            for record, parent in zip(records, parents, strict=True):
                one = _tracer.start_span(
                    f"{record.event_type} process",
                    context=parent or batch_ctx,
                    kind=SpanKind.CONSUMER,
                    links=[Link(batch.get_span_context())],
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": record.topic,
                        "messaging.destination.partition.id": str(record.partition),
                        "messaging.kafka.offset": record.offset,
                        "messaging.consumer.group.name": group,
                        "leadrelay.lead_id": record.lead_id,
                    },
                )
                spans.append(one)
                current.leads[record.lead_id] = current.events[record.event_id] = (
                    trace.set_span_in_context(one)
                )
            try:
                yield
            except BaseException as exc:
                for one in spans:
                    one.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                for one in spans:
                    one.end()


def failed(current: Span, why: str) -> None:
    """Mark a span as failed, with a short reason (never personal data)."""
    current.set_status(Status(StatusCode.ERROR, why[:200]))


def trace_id_for(lead_id: str | None) -> str | None:
    """The trace id a log line belongs to: its lead's in this scope, else the current span's."""
    if _provider is None:
        return None
    ctx = context_of(lead_id) if lead_id else None
    span_context = trace.get_current_span(ctx or otel_context.get_current()).get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else None


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}
