"""intake against the real broker: 202 only after acks=all, and a bounded 503 without a broker."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from intake.bootstrap import create_app
from intake.settings import IntakeSettings
from leadrelay_shared.contracts import Topics, lead_id_for
from tests.integration.kafka_helpers import read_to_end

pytestmark = pytest.mark.integration


async def started(settings: IntakeSettings, wait_ready: bool):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")
    if wait_ready:
        for _ in range(100):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
    return lifespan, client


async def test_accepted_form_is_on_the_topic_with_key_and_headers(infra) -> None:  # type: ignore[no-untyped-def]
    lifespan, client = await started(IntakeSettings(kafka_bootstrap_servers=infra.bootstrap), True)
    try:
        email = f"kafka-{time.time_ns()}@northwind.example"
        resp = await client.post("/v1/forms", json={"email": email, "title": "CTO"},
                                 headers={"Idempotency-Key": email})
        again = await client.post("/v1/forms", json={"email": email, "title": "CTO"},
                                  headers={"Idempotency-Key": email})
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    assert resp.status_code == 202 and again.json()["event_id"] == resp.json()["event_id"]
    lead_id = lead_id_for(email)
    records = await read_to_end(infra.bootstrap, Topics.INTAKE,
                                keep=lambda r: r.key == lead_id.encode())
    assert len(records) == 2  # a retry is a second record with the same event id
    headers = dict(records[0].headers)
    assert headers["ce_id"].decode() == resp.json()["event_id"]
    assert headers["ce_type"] == b"io.leadrelay.form.submitted"


async def test_no_broker_gives_503_within_bounded_time() -> None:
    from devstack.ports import free_port

    dead = f"127.0.0.1:{free_port()}"
    settings = IntakeSettings(kafka_bootstrap_servers=dead, kafka_send_timeout_s=1.0)
    lifespan, client = await started(settings, False)
    try:
        began = time.monotonic()
        resp = await client.post("/v1/forms", json={"email": "a@northwind.example"})
        took = time.monotonic() - began
        ready = await client.get("/readyz")
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    assert resp.status_code == 503 and took < 2.0
    assert ready.status_code == 503 and ready.json()["checks"]["kafka"] is False
