"""intake's HTTP surface in process: keys and scopes, limits, forms from HTML, events, batches,
feedback, marketing-tool adapters. Kafka is replaced by a recording publisher here; the real
broker is in tests/integration/test_intake_kafka.py."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY

from devstack.ports import free_port
from intake import domain
from intake.adapters import hubspot, mautic
from intake.auth import KeyKind, Scope
from intake.bootstrap import create_app
from intake.settings import IntakeSettings
from leadrelay_shared.contracts import (
    EngagementRecorded,
    FeedbackReceived,
    FormSubmitted,
    lead_id_for,
)
from leadrelay_shared.runtime import server_options
from tests.unit.intake.fakes import FakePublisher, StaticKeys, client

FIXTURES = Path(__file__).parents[2] / "fixtures" / "adapters"
FORM = {"email": "ada@northwind.example"}


# -- keys, scopes and limits ------------------------------------------------------------------


async def test_a_key_is_required_and_errors_say_how_to_send_one() -> None:
    async with client(FakePublisher(), key="") as c:
        r = await c.post("/v1/forms", json=FORM)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["detail"]
    assert r.headers["content-type"] == "application/problem+json"


async def test_unknown_malformed_and_wrong_scope_keys() -> None:
    keys = StaticKeys()
    forms_only = keys.add(Scope.FORMS)
    pub = FakePublisher()
    async with client(pub, keys=keys, key=forms_only) as c:
        ok = await c.post("/v1/forms", json=FORM)
        wrong_scope = await c.post("/v1/activities", json={**FORM, "activity_type": "call"})
        malformed = await c.post("/v1/forms", json=FORM, headers={"Authorization": "Bearer x"})
        unknown = await c.post(
            "/v1/forms", json=FORM, headers={"Authorization": "Bearer " + forms_only[:-4] + "AAAA"}
        )
        via_x_api_key = await c.post(
            "/v1/forms", json=FORM, headers={"Authorization": "", "X-API-Key": forms_only}
        )
    assert ok.status_code == 202 and via_x_api_key.status_code == 202
    assert wrong_scope.status_code == 403 and "activities:write" in wrong_scope.json()["detail"]
    assert malformed.status_code == 401 and malformed.json()["errors"][0]["rule"] == "malformed_key"
    assert unknown.status_code == 401 and unknown.json()["errors"][0]["rule"] == "unknown_key"
    assert len(pub.events) == 2
    first = pub.events[0]
    assert isinstance(first, FormSubmitted)
    assert first.audit is not None and first.audit.source_key_id


async def test_revoked_key_is_refused() -> None:
    keys = StaticKeys()
    key = keys.add(Scope.FORMS)
    key_id = key.split("_")[2]
    keys.keys[key_id] = keys.keys[key_id].__class__(
        **{**keys.keys[key_id].__dict__, "revoked_at": datetime.now(UTC)}
    )
    async with client(FakePublisher(), keys=keys, key=key) as c:
        r = await c.post("/v1/forms", json=FORM)
    assert r.status_code == 401 and r.json()["errors"][0]["rule"] == "revoked_key"


async def test_secret_keys_are_refused_in_the_url_publishable_keys_only_for_forms() -> None:
    keys = StaticKeys()
    secret = keys.add(Scope.FORMS)
    publishable = keys.add(
        Scope.FORMS, kind=KeyKind.PUBLISHABLE, origins=("https://www.northwind.example",)
    )
    async with client(FakePublisher(), keys=keys, key="") as c:
        secret_in_url = await c.post(f"/v1/forms?key={secret}", json=FORM)
        browser = await c.post(
            f"/v1/forms?key={publishable}",
            json=FORM,
            headers={"Origin": "https://www.northwind.example"},
        )
        other_site = await c.post(
            f"/v1/forms?key={publishable}", json=FORM, headers={"Origin": "https://evil.example"}
        )
        events_via_url = await c.post(
            f"/v1/events?key={publishable}", json={**FORM, "engagement_type": "page_view"}
        )
    assert secret_in_url.status_code == 401
    assert secret_in_url.json()["errors"][0]["rule"] == "secret_key_in_url"
    assert browser.status_code == 202
    assert other_site.status_code == 403
    assert events_via_url.status_code == 401


async def test_rate_limit_per_key_gives_429_with_retry_after() -> None:
    keys = StaticKeys()
    slow = keys.add(Scope.FORMS, rate_limit="3/minute")
    fast = keys.add(Scope.FORMS)
    async with client(FakePublisher(), keys=keys, key=slow) as c:
        codes = [(await c.post("/v1/forms", json=FORM)).status_code for _ in range(4)]
        limited = await c.post("/v1/forms", json=FORM)
        other_key = await c.post(
            "/v1/forms", json=FORM, headers={"Authorization": f"Bearer {fast}"}
        )
    assert codes == [202, 202, 202, 429]
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert other_key.status_code == 202


async def test_auth_off_is_refused_outside_development() -> None:
    from pydantic import ValidationError

    from intake.settings import IntakeSettings

    with pytest.raises(ValidationError, match="auth_required"):
        IntakeSettings(auth_required=False, environment="production")


@pytest.mark.parametrize("behind_a_proxy", [False, True])
async def test_forwarded_addresses_count_only_behind_a_proxy(behind_a_proxy: bool) -> None:
    """Served by uvicorn as intake's process serves it: a request from this host that says
    ``X-Forwarded-For`` is audited (and rate limited) by the forwarded address only with
    ``INTAKE_TRUST_FORWARDED_FOR``; uvicorn's own proxy headers, on by default for connections
    from this host, follow the same setting."""
    keys, publisher = StaticKeys(), FakePublisher()
    key = keys.add(Scope.EVENTS)
    settings = IntakeSettings(trust_forwarded_for=behind_a_proxy)
    app = create_app(settings, keys=keys)
    app.state.publisher = publisher
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="off",
            **server_options(
                "127.0.0.1", free_port(), "warning", proxy_headers=settings.trust_forwarded_for
            ),
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient() as c:
            answer = await c.post(
                f"http://127.0.0.1:{server.config.port}/v1/events",
                json={**FORM, "engagement_type": "page_view"},
                headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "203.0.113.9"},
            )
    finally:
        server.should_exit = True
        await serving
    seen_as = "203.0.113.9" if behind_a_proxy else "127.0.0.1"
    assert answer.status_code == 202
    event = publisher.events[0]
    assert isinstance(event, EngagementRecorded) and event.audit is not None
    assert event.audit.client_ip_hash == domain.hash_ip(
        seen_as, settings.ip_hash_key.get_secret_value().encode()
    )


async def test_request_id_is_echoed_or_made_up_and_metrics_count_rejections() -> None:
    async with client(FakePublisher()) as c:
        given = await c.post("/v1/forms", json=FORM, headers={"X-Request-ID": "req-abc-123"})
        made_up = await c.post("/v1/forms", json={"email": "nope"})
        metrics = (await c.get("/metrics")).text
    assert given.headers["x-request-id"] == "req-abc-123"
    assert len(made_up.headers["x-request-id"]) >= 32
    assert 'intake_rejections_total{reason="invalid_field"}' in metrics
    assert 'leadrelay_http_requests_total{method="POST",route="/v1/forms",status="202"}' in metrics
    assert "intake_kafka_send_seconds" in metrics


async def test_every_request_is_counted_and_timed_by_route_and_status() -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    accepted = {"method": "POST", "route": "/v1/events", "status": "202"}
    refused = {**accepted, "status": "422"}
    before = (
        sample("leadrelay_http_requests_total", **accepted),
        sample("leadrelay_http_requests_total", **refused),
        sample("leadrelay_http_request_seconds_count", route="/v1/events"),
    )
    async with client(FakePublisher()) as c:
        for _ in range(3):
            await c.post("/v1/events", json={**FORM, "engagement_type": "page_view"})
        await c.post("/v1/events", json={**FORM, "engagement_type": "telepathy"})
    after = (
        sample("leadrelay_http_requests_total", **accepted),
        sample("leadrelay_http_requests_total", **refused),
        sample("leadrelay_http_request_seconds_count", route="/v1/events"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 1, 4]


async def test_cors_preflight_for_configured_origins_only() -> None:
    origin = "https://www.northwind.example"
    async with client(FakePublisher(), cors_origins=[origin]) as c:
        allowed = await c.options(
            "/v1/forms",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        refused = await c.options(
            "/v1/forms",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-origin" not in refused.headers


# -- HTML forms --------------------------------------------------------------------------------


async def test_urlencoded_form_maps_fields_utm_consent_and_redirects() -> None:
    pub = FakePublisher()
    origin = "https://www.northwind.example"
    body = (
        "email=Ada%40Northwind.example&firstname=Ada&jobtitle=CTO&company_size=250"
        "&utm_source=google&consent_marketing=on&interest=routing&interest=sla"
        f"&_redirect={origin}/thanks&_gotcha="
    )
    async with client(pub, cors_origins=[origin]) as c:
        r = await c.post(
            "/v1/forms", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        elsewhere = await c.post(
            "/v1/forms",
            content="email=a%40b.example&_redirect=https://evil.example/x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert r.status_code == 303 and r.headers["location"] == f"{origin}/thanks"
    event = pub.events[0]
    assert isinstance(event, FormSubmitted)
    assert event.lead.first_name == "Ada" and event.lead.title == "CTO"
    assert event.lead.company_size == 250 and event.utm == {"utm_source": "google"}
    assert event.consent == {"marketing": True} and event.fields == {"interest": "routing, sla"}
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["field"] == "_redirect"
    assert len(pub.events) == 1


async def test_multipart_form_and_unsupported_media_type() -> None:
    pub = FakePublisher()
    async with client(pub) as c:
        multipart = await c.post(
            "/v1/forms", data={"email": "ada@northwind.example"}, files={"ignored": ("a.txt", b"x")}
        )
        plain = await c.post("/v1/forms", data={"email": "ada@northwind.example", "title": "CTO"})
        xml = await c.post(
            "/v1/forms", content=b"<email/>", headers={"Content-Type": "application/xml"}
        )
    assert multipart.status_code == 400  # files are not accepted
    assert multipart.headers["content-type"] == "application/problem+json"
    assert plain.status_code == 202
    assert xml.status_code == 422 and xml.json()["errors"][0]["rule"] == "media_type"


JSON_ENDPOINTS = [
    ("/v1/forms", FORM),
    ("/v1/events", {**FORM, "engagement_type": "page_view"}),
    ("/v1/activities", {**FORM, "activity_type": "call"}),
    ("/v1/leads/lead-1/feedback", {"feedback": "accepted"}),
]


@pytest.mark.parametrize(("path", "body"), JSON_ENDPOINTS)
async def test_json_endpoints_check_the_key_the_body_and_the_idempotency_key(
    path: str, body: dict[str, str]
) -> None:
    pub = FakePublisher()
    async with client(pub) as c:
        ok = await c.post(path, json=body, headers={"Idempotency-Key": "k" * 200})
        again = await c.post(path, json=body, headers={"Idempotency-Key": "k" * 200})
        long_key = await c.post(path, json=body, headers={"Idempotency-Key": "k" * 201})
        as_text = await c.post(
            path, content=json.dumps(body), headers={"Content-Type": "text/plain"}
        )
        as_json_suffix = await c.post(
            path, content=json.dumps(body), headers={"Content-Type": "application/vnd.x+json"}
        )
        keyless_and_bad = await c.post(path, content=b"{", headers={"Authorization": ""})
        bad = await c.post(path, content=b"{")
    assert ok.status_code == again.status_code == as_json_suffix.status_code == 202
    assert ok.json()["event_id"] == again.json()["event_id"] and ok.json()["status"] == "accepted"
    assert ok.headers["content-type"] == "application/json"
    assert long_key.status_code == 422
    assert long_key.json()["errors"] == [
        {
            "field": "Idempotency-Key",
            "rule": "string_too_long",
            "message": "at most 200 characters, got 201",
        }
    ]
    assert as_text.status_code == 422 and as_text.json()["errors"][0]["rule"] == "media_type"
    # FastAPI decodes a JSON body before its dependencies run; a keyless request is refused
    # either way and publishes nothing
    assert keyless_and_bad.status_code in (401, 422)
    assert bad.status_code == 422 and bad.json()["errors"][0]["rule"] == "json_invalid"
    assert len(pub.events) == 3


async def test_the_request_bodies_are_documented() -> None:
    async with client(FakePublisher()) as c:
        spec = (await c.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for path, model in [
        ("/v1/forms", "FormFill"),
        ("/v1/events", "EngagementIn"),
        ("/v1/events:batch", "BatchIn"),
        ("/v1/activities", "ActivityIn"),
        ("/v1/leads/{lead_id}/feedback", "FeedbackIn"),
    ]:
        operation = spec["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        if path == "/v1/forms":  # JSON or an HTML form: the JSON schema is given in place
            assert body["title"] == model and "email" in body["properties"]
        else:
            assert body == {"$ref": f"#/components/schemas/{model}"} and model in schemas
        header = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header[0]["in"] == "header" and header[0]["schema"]["maxLength"] == 200
    refs = {
        part.split('"')[0] for part in json.dumps(spec).split('"$ref": "#/components/schemas/')[1:]
    }
    assert refs <= set(schemas)  # everything referred to is there


# -- marketing events, batches, feedback -------------------------------------------------------


async def test_marketing_event_with_source_event_id_is_idempotent() -> None:
    pub = FakePublisher()
    body = {
        "email": "Ada@Northwind.example",
        "engagement_type": "webinar_attended",
        "properties": {"webinar": "Routing 101", "minutes": 48},
        "source_event_id": "w-1",
    }
    async with client(pub) as c:
        first = await c.post("/v1/events", json=body)
        again = await c.post("/v1/events", json=body)
        bad = await c.post("/v1/events", json={**body, "engagement_type": "telepathy"})
    assert first.status_code == again.status_code == 202
    assert first.json()["event_id"] == again.json()["event_id"]
    event = pub.events[0]
    assert isinstance(event, EngagementRecorded) and event.email_domain == "northwind.example"
    assert event.lead_id == lead_id_for("ada@northwind.example")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "engagement_type"


async def test_batch_keeps_good_items_and_reports_each_bad_one() -> None:
    pub = FakePublisher()
    items = [
        {"email": "a@northwind.example", "engagement_type": "page_view", "url": "https://x/p"},
        {"email": "not-an-email", "engagement_type": "page_view"},
        {"email": "b@northwind.example", "engagement_type": "nope"},
        {"lead_id": "lead-123", "engagement_type": "email_click", "source_event_id": "c-9"},
        "not an object",
    ]
    async with client(pub, batch_max_items=10) as c:
        r = await c.post(
            "/v1/events:batch", json={"items": items}, headers={"Idempotency-Key": "batch-1"}
        )
        again = await c.post(
            "/v1/events:batch", json={"items": items}, headers={"Idempotency-Key": "batch-1"}
        )
        too_many = await c.post("/v1/events:batch", json={"items": items * 3})
    body = r.json()
    assert r.status_code == 200
    assert (body["accepted"], body["rejected"], body["unavailable"]) == (2, 3, 0)
    statuses = [i["status"] for i in body["items"]]
    assert statuses == ["accepted", "rejected", "rejected", "accepted", "rejected"]
    assert body["items"][1]["errors"][0]["field"] == "email"
    assert body["items"][2]["errors"][0]["field"] == "engagement_type"
    assert [i["event_id"] for i in again.json()["items"]] == [i["event_id"] for i in body["items"]]
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "items"


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"items": []}', "items"),
        (b'{"events": [{}]}', "items"),
        (b'{"items": {}}', "items"),
        (b'{"items": [', "(body)"),
        (b"[]", "(body)"),
    ],
)
async def test_a_batch_envelope_that_breaks_a_rule_is_a_422_naming_it(
    body: bytes, field: str
) -> None:
    async with client(FakePublisher()) as c:
        r = await c.post(
            "/v1/events:batch", content=body, headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_a_batch_is_json_like_every_other_body() -> None:
    """The batch endpoint refuses what is not JSON as the single-event endpoints do."""
    items = json.dumps(
        {"items": [{"email": "a@northwind.example", "engagement_type": "page_view"}]}
    )
    pub = FakePublisher()
    async with client(pub) as c:
        as_text = await c.post(
            "/v1/events:batch", content=items, headers={"Content-Type": "text/plain"}
        )
        as_json_suffix = await c.post(
            "/v1/events:batch", content=items, headers={"Content-Type": "application/vnd.x+json"}
        )
        untyped = await c.post("/v1/events:batch", content=items)
    assert as_text.status_code == 422
    assert as_text.json()["errors"] == [
        {
            "field": "(body)",
            "rule": "media_type",
            "message": "unsupported media type 'text/plain'; send application/json",
        }
    ]
    assert as_json_suffix.status_code == untyped.status_code == 200
    assert len(pub.events) == 2


async def test_batch_with_broker_down_is_503() -> None:
    async with client(FakePublisher(fail=True)) as c:
        r = await c.post(
            "/v1/events:batch",
            json={"items": [{"email": "a@northwind.example", "engagement_type": "page_view"}]},
        )
    assert r.status_code == 503


async def test_batch_has_its_own_body_limit() -> None:
    items = [
        {
            "email": f"u{i}@northwind.example",
            "engagement_type": "page_view",
            "url": "https://northwind.example/" + "p" * 200,
        }
        for i in range(300)
    ]
    async with client(FakePublisher(), batch_max_items=500) as c:
        batch = await c.post("/v1/events:batch", json={"items": items})
        single = await c.post(
            "/v1/events", json={**items[0], "properties": {f"k{i}": "v" * 2000 for i in range(40)}}
        )
    assert batch.status_code == 200 and batch.json()["accepted"] == 300
    assert single.status_code == 413


@pytest.mark.parametrize(
    "body, field",
    [
        ({"feedback": "rejected"}, "reason_code"),
        ({"feedback": "accepted", "reason_code": "no_budget"}, "reason_code"),
        ({"feedback": "rejected", "reason_code": "because"}, "reason_code"),
        ({"feedback": "won", "currency": "euro"}, "currency"),
        ({"feedback": "maybe"}, "feedback"),
    ],
)
async def test_feedback_validation_names_the_field(body: dict[str, str], field: str) -> None:
    async with client(FakePublisher()) as c:
        r = await c.post("/v1/leads/lead-1/feedback", json=body)
    assert r.status_code == 422 and field in json.dumps(r.json())


async def test_feedback_is_published_for_the_lead() -> None:
    pub = FakePublisher()
    async with client(pub) as c:
        r = await c.post(
            "/v1/leads/lead-1/feedback",
            json={
                "feedback": "rejected",
                "reason_code": "no_budget",
                "actor_id": "rep-ana",
                "note": "frozen\x00 until Q2",
            },
        )
        bad_id = await c.post("/v1/leads/a%20b/feedback", json={"feedback": "accepted"})
    assert r.status_code == 202
    event = pub.events[0]
    assert isinstance(event, FeedbackReceived) and event.lead_id == "lead-1"
    assert event.reason_code == "no_budget" and event.note == "frozen until Q2"
    assert bad_id.status_code == 422


# -- marketing-tool adapters -------------------------------------------------------------------


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def test_hubspot_signed_form_submission() -> None:
    pub = FakePublisher()
    body = fixture("hubspot_contact_form.json")
    url = "http://intake/v1/adapters/hubspot"
    ts = str(int(time.time() * 1000))
    good = {
        "X-HubSpot-Signature-v3": hubspot.sign_v3("hs-secret", "POST", url, body, ts),
        "X-HubSpot-Request-Timestamp": ts,
        "Content-Type": "application/json",
    }
    old_ts = str(int(time.time() * 1000) - 600_000)
    old = {
        **good,
        "X-HubSpot-Request-Timestamp": old_ts,
        "X-HubSpot-Signature-v3": hubspot.sign_v3("hs-secret", "POST", url, body, old_ts),
    }
    async with client(pub, key="", hubspot_client_secret="hs-secret") as c:
        r = await c.post("/v1/adapters/hubspot", content=body, headers=good)
        again = await c.post("/v1/adapters/hubspot", content=body, headers=good)
        tampered = await c.post(
            "/v1/adapters/hubspot", content=body.replace(b"Grace", b"Eve"), headers=good
        )
        stale = await c.post("/v1/adapters/hubspot", content=body, headers=old)
        unsigned = await c.post("/v1/adapters/hubspot", content=body)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"][0]["event_id"] == again.json()["accepted"][0]["event_id"]
    assert tampered.status_code == stale.status_code == unsigned.status_code == 401
    assert "old" in stale.json()["detail"]
    event = pub.events[0]
    assert isinstance(event, FormSubmitted) and event.source_system == "hubspot"
    assert event.lead.email == "grace.hopper@contoso.example"
    assert event.lead.company_size == 201 and event.lead.phone == "+12065550100"
    assert event.page_url == "https://www.contoso.example/demo"
    assert event.occurred_at == datetime(2025, 11, 23, 12, 13, 10, tzinfo=UTC)
    assert event.audit is not None and event.audit.source_event_id
    assert event.audit.source_event_id.startswith("hubspot:")


async def test_mautic_signed_form_and_page_hits() -> None:
    pub = FakePublisher()
    form, hits = fixture("mautic_form_submit.json"), fixture("mautic_page_hit.json")
    async with client(pub, key="", mautic_webhook_secret="m-secret") as c:
        r1 = await c.post(
            "/v1/adapters/mautic",
            content=form,
            headers={"Webhook-Signature": mautic.sign("m-secret", form)},
        )
        r2 = await c.post(
            "/v1/adapters/mautic",
            content=hits,
            headers={"Webhook-Signature": mautic.sign("m-secret", hits)},
        )
        forged = await c.post(
            "/v1/adapters/mautic",
            content=hits,
            headers={"Webhook-Signature": mautic.sign("other", hits)},
        )
    assert r1.status_code == r2.status_code == 202 and forged.status_code == 401
    submitted, clicked = pub.events
    assert isinstance(submitted, FormSubmitted) and submitted.lead.title == "Head of IT"
    assert submitted.lead.company_size == 1000 and submitted.fields["message"] == "Please call me"
    assert isinstance(clicked, EngagementRecorded) and clicked.engagement_type == "email_click"
    assert clicked.url == "https://www.initech.example/pricing"
    ignored = r2.json()["ignored"]
    assert any("anonymous" in i for i in ignored) and any(
        "lead_post_save_update" in i for i in ignored
    )


async def test_adapters_without_a_secret_need_a_key_and_name_bad_paths() -> None:
    keys = StaticKeys()
    adapter_key = keys.add(Scope.ADAPTERS)
    async with client(FakePublisher(), keys=keys, key="") as c:
        no_key = await c.post("/v1/adapters/mautic", content=fixture("mautic_form_submit.json"))
        headers = {"Authorization": f"Bearer {adapter_key}"}
        ok = await c.post(
            "/v1/adapters/mautic", content=fixture("mautic_form_submit.json"), headers=headers
        )
        broken = await c.post(
            "/v1/adapters/mautic", json={"mautic.form_on_submit": [{}]}, headers=headers
        )
        not_json = await c.post("/v1/adapters/hubspot", content=b"{", headers=headers)
        deep = await c.post(
            "/v1/adapters/hubspot", content=b"[" * 100_000 + b"]" * 100_000, headers=headers
        )
    assert no_key.status_code == 401 and ok.status_code == 202
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "mautic.form_on_submit.0.submission.id"
    assert not_json.status_code == 422 and deep.status_code in (413, 422)
