"""One form fill is one trace: intake's request, each consumer's record, scoring's and router's
decisions, the webhook to the sales system and the SLA alert, exported by the real services over
OTLP/HTTP and decoded with the official protobuf messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from devstack.otlp import OtlpReceiver, ReceivedSpan
from devstack.ports import free_port
from devstack.receiver import Receiver
from tests.e2e.stack import fill_form, rules_files, started
from tests.infra import Infra

pytestmark = pytest.mark.e2e

SLA_SECONDS = 3.0
ASSIGNED = "lead.assigned"  # the webhooks' event types
BREACHED = "sla.breached"


@dataclass
class Traced:
    otlp: OtlpReceiver
    receiver: Receiver
    intake: httpx.AsyncClient


@pytest.fixture(scope="module")
async def traced(
    infra: Infra, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Traced]:
    otlp = OtlpReceiver(port=free_port())
    otlp.start()
    workdir = tmp_path_factory.mktemp("traces")
    env = rules_files(workdir, receiver.port, ("rep-a",), SLA_SECONDS) | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    try:
        async with started(infra, workdir, env, ("intake", "scoring", "router", "sla-monitor")) as (
            stack,
            _,
        ):
            key = await asyncio.to_thread(stack.api_key, "traces")
            async with httpx.AsyncClient(
                base_url=stack.url("intake"), timeout=10, headers={"Authorization": f"Bearer {key}"}
            ) as client:
                yield Traced(otlp, receiver, client)
    finally:
        otlp.stop()


def parent_of(spans: list[ReceivedSpan], child: ReceivedSpan) -> ReceivedSpan:
    (parent,) = [s for s in spans if s.span_id == child.parent_span_id]
    return parent


def one(spans: list[ReceivedSpan], name: str, service: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name and s.service == service]
    assert len(found) == 1, (name, service, [(s.service, s.name) for s in spans])
    return found[0]


async def test_a_form_fill_is_one_trace_from_the_request_to_the_webhook_and_the_alert(
    traced: Traced,
) -> None:
    _, lead_id = await fill_form(traced.intake)
    routed = await traced.receiver.wait_for("crm", lead_id, 30)
    alerted = await traced.receiver.wait_for("ops", lead_id, 30)
    assert routed and alerted

    def complete(otlp: OtlpReceiver) -> bool:
        names = {s.name for s in otlp.spans if s.attributes.get("leadrelay.lead_id") == lead_id}
        return {f"{ASSIGNED} deliver", f"{BREACHED} deliver"} <= names

    assert await traced.otlp.wait_for(complete, 15), "the spans did not all arrive"
    (request,) = [
        s
        for s in traced.otlp.named("POST /v1/forms")
        if s.service == "leadrelay-intake"
        and s.trace_id
        in {
            x.trace_id
            for x in traced.otlp.spans
            if x.attributes.get("leadrelay.lead_id") == lead_id
        }
    ]
    spans = traced.otlp.trace(request.trace_id)
    assert request.parent_span_id is None, "the request starts the trace"

    # each step is a child of the one before it, across four processes and Kafka
    scored = one(spans, "io.leadrelay.form.submitted process", "leadrelay-scoring")
    assert scored.parent_span_id == request.span_id
    decided = one(spans, "scoring.decide", "leadrelay-scoring")
    assert parent_of(spans, decided) == scored
    assert decided.attributes["leadrelay.stage"] == "mql"
    route = one(spans, "router.decide", "leadrelay-router")
    routing = parent_of(spans, route)  # the stage change to MQL (scoring made two)
    assert (routing.service, routing.name) == (
        "leadrelay-router",
        "io.leadrelay.stage.changed process",
    )
    assert parent_of(spans, routing) == decided
    assert route.attributes["leadrelay.routing.rep"] == "rep-a"
    webhook = one(spans, f"{ASSIGNED} deliver", "leadrelay-router")
    assert parent_of(spans, webhook) == route
    assert webhook.attributes["http.response.status_code"] == 200
    handoff = one(spans, "io.leadrelay.lead.assigned process", "leadrelay-sla-monitor")
    assert parent_of(spans, handoff) == route
    clock = one(spans, "sla.clock", "leadrelay-sla-monitor")
    assert parent_of(spans, clock) == handoff
    alert = one(spans, "sla.alert", "leadrelay-sla-monitor")
    assert parent_of(spans, alert) == clock
    assert alert.attributes["leadrelay.sla.level"] == "breach"
    paged = one(spans, f"{BREACHED} deliver", "leadrelay-sla-monitor")
    assert parent_of(spans, paged) == alert

    # in the order they happened, and the receivers were told which trace they belong to
    order = [request, scored, decided, routing, route, webhook]
    assert [s.start_ns for s in order] == sorted(s.start_ns for s in order)
    assert alert.start_ns > clock.start_ns
    assert routed[0].traceparent is not None and request.trace_id in routed[0].traceparent
    assert alerted[0].traceparent is not None and request.trace_id in alerted[0].traceparent

    # each consumer batch is a span of its own, linked to the records it took
    batches = [s for s in traced.otlp.spans if s.name.endswith(" process") and s.links]
    assert any((request.trace_id, request.span_id) in b.links for b in batches)
