"""intake's HTTP entrypoint: authenticate, decode, call a handler, map errors. No rules here."""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from leadrelay_shared import jsonio
from leadrelay_shared.contracts import Event
from leadrelay_shared.web import problem

from . import domain, handlers
from .adapters import hubspot, mautic
from .adapters.inbound import PayloadInvalid, SignatureInvalid, Translation
from .auth import AuthError, Caller, KeyStore, KeyStoreUnavailable, Scope, check, parse_key
from .errors import InvalidInput, NotAccepted
from .handlers import Published, Publisher, RequestContext
from .ratelimit import RateLimited, RateLimiter
from .schemas import (
    BATCH_RESULT,
    Accepted,
    ActivityIn,
    AdapterResult,
    BatchEnvelope,
    BatchIn,
    BatchResult,
    EngagementIn,
    FeedbackIn,
    FormFill,
    ItemError,
)
from .settings import IntakeSettings

REJECTED = Counter("intake_rejections_total", "Requests refused, by reason", ["reason"])
PROBLEMS = "https://leadrelay.dev/problems/"
ModelT = TypeVar("ModelT", bound=BaseModel)

router = APIRouter(prefix="/v1", tags=["ingestion"])
# The endpoints that take only the request and answer with a finished response, served the short
# way (``direct.DirectApp``).
DIRECT_PATHS = ("/v1/forms", "/v1/events", "/v1/events:batch", "/v1/activities")


@dataclass
class Gate:
    """Authentication, scopes and rate limits, in front of every ingestion endpoint."""

    settings: IntakeSettings
    keys: KeyStore
    limiter: RateLimiter

    def __post_init__(self) -> None:
        self._ip_hash_key = self.settings.ip_hash_key.get_secret_value().encode()

    async def authorise(self, request: Request, scope: Scope, *, signed: bool = False) -> Caller:
        presented, via_query = _presented_key(request)
        if presented is None:
            if signed:
                caller = Caller(key_id=None, source=request.url.path.rsplit("/", 1)[-1])
            elif not self.settings.auth_required:
                caller = Caller(key_id=None, source="anonymous")
            else:
                raise AuthError(401, "missing_key", "an API key is required: send "
                                "`Authorization: Bearer <key>` or `X-API-Key: <key>`")
        else:
            parsed = parse_key(presented)
            if parsed is None:
                raise AuthError(401, "malformed_key", "the API key is not in the form lr_sk_... "
                                "or lr_pk_...")
            kind, key_id = parsed
            if via_query and scope is not Scope.FORMS:
                raise AuthError(401, "key_in_url", "API keys in the URL are only accepted for "
                                "form posts with a publishable key")
            caller = check(await self.keys.get(key_id), presented, kind=kind, scope=scope,
                           origin=request.headers.get("origin"), via_query=via_query)
        request.state.key_id = caller.key_id
        identity = caller.key_id or f"ip:{client_ip(request, self.settings)}"
        notation = caller.rate_limit or (self.settings.rate_limit if caller.key_id
                                         else self.settings.anonymous_rate_limit)
        await self.limiter.hit(identity, notation)
        return caller

    def context(self, request: Request, caller: Caller, idempotency_key: str | None,
                now: datetime) -> RequestContext:
        audit = domain.audit(
            key_id=caller.key_id, client_ip=client_ip(request, self.settings),
            user_agent=request.headers.get("user-agent"), request_id=correlation_id.get(),
            ip_hash_key=self._ip_hash_key)
        return RequestContext(now=now, caller_scope=caller.key_id or caller.source,
                              idempotency_key=idempotency_key, audit=audit)


def _presented_key(request: Request) -> tuple[str | None, bool]:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip(), False
    if key := request.headers.get("x-api-key"):
        return key.strip(), False
    if key := request.query_params.get("key"):
        return key.strip(), True
    return None, False


def client_ip(request: Request, settings: IntakeSettings) -> str | None:
    if settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else None


def wiring(request: Request) -> tuple[Gate, Publisher, datetime]:
    """What every endpoint needs, read straight from the app (cheaper than three dependencies)."""
    return request.app.state.gate, request.app.state.publisher, datetime.now(UTC)


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API key: `Authorization: Bearer lr_sk_...`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "The same key in `X-API-Key`"},
}
IDEMPOTENCY_KEY_MAX = 200
LeadId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
SECURED: dict[str, Any] = {"security": [{"bearer": []}, {"apiKey": []}]}
# The ingestion endpoints read their body and Idempotency-Key by hand (see _read_json), so both
# are documented here rather than by FastAPI.
IDEMPOTENT: dict[str, Any] = {**SECURED, "parameters": [{
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Retry with the same key and the event keeps its id: counted once downstream",
    "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX}}]}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a JSON body of ``model`` (its schema is added to the components by
    ``bootstrap``), with the Idempotency-Key header."""
    return {**IDEMPOTENT, "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, an unknown or revoked one, or a bad webhook signature"},
    403: {"description": "The key lacks the scope this endpoint needs"},
    413: {"description": "Body too large"},
    422: {"description": "A field breaks a rule (problem document naming the field and rule)"},
    429: {"description": "Rate limit exceeded; wait for `Retry-After` seconds"},
    503: {"description": "Kafka did not acknowledge in time; retry with the same Idempotency-Key"},
}

FORM_URLENCODED = {
    "type": "object",
    "description": "A plain HTML form. Profile fields by name (`email`, `first_name`, ...), "
                   "`utm_*`, `consent_<name>` (on/true/yes), `_redirect` (thank-you page on an "
                   "allowed origin); other fields are kept as free fields.",
    "properties": {name: {"type": "string"} for name in (
        "email", "first_name", "last_name", "company", "title", "phone", "country", "region",
        "postal_code",
        "company_size", "industry", "page_url", "utm_source", "utm_campaign",
        "consent_marketing", "_redirect")},
    "required": ["email"],
    "additionalProperties": {"type": "string"},
}
_FORM_EXTRA = FormFill.model_config.get("json_schema_extra")
_FORM_EXAMPLES = _FORM_EXTRA.get("examples") if isinstance(_FORM_EXTRA, dict) else None
FORM_EXAMPLE = _FORM_EXAMPLES[0] if isinstance(_FORM_EXAMPLES, list) and _FORM_EXAMPLES else {}
FORM_BODY = {**IDEMPOTENT, "requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/FormFill"},
                         "example": FORM_EXAMPLE},
    "application/x-www-form-urlencoded": {"schema": FORM_URLENCODED},
    "multipart/form-data": {"schema": FORM_URLENCODED},
}}}


@router.post("/forms", status_code=202, response_model=Accepted,
             responses={**ERRORS, 303: {"description": "HTML form with `_redirect`: go to the "
                                        "thank-you page"}}, openapi_extra=FORM_BODY)
async def post_form(request: Request) -> Response:
    """Accept a form fill, as JSON or straight from an HTML form (urlencoded or multipart).

    Answered 202 only after Kafka acknowledged it (acks=all). Browsers may send a publishable
    key as `?key=lr_pk_...`; a `_redirect` field sends them on to a thank-you page.
    """
    gate, publisher, now = wiring(request)
    caller = await gate.authorise(request, Scope.FORMS)
    form, redirect = await _read_form(request)
    if redirect is not None:
        _check_redirect(redirect, gate.settings, caller)
    event = await handlers.submit_form(
        form, publisher=publisher, ctx=gate.context(request, caller, idempotency_key(request), now))
    if redirect is not None:
        return RedirectResponse(redirect, status_code=303)
    return accepted(event)


async def _read_form(request: Request) -> tuple[FormFill, str | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        async with request.form(max_files=0, max_fields=200) as data:
            pairs = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
        fields, redirect = domain.form_from_fields(pairs)
        return _validate(FormFill, fields), redirect
    return await _read_json(request, FormFill, content_type=content_type,
                            expected="application/json or an HTML form"), None


async def _read_json(request: Request, model: type[ModelT], *, content_type: str | None = None,
                     expected: str = "application/json") -> ModelT:
    """The body as ``model``, parsed and validated in one pass by pydantic-core.

    FastAPI would parse the JSON to Python objects first, validate them after and only then
    let the endpoint authenticate (with the header parameter and the response model, a single
    event took a quarter more Python calls that way); read by hand, a request without a valid
    key is refused before its body is looked at."""
    _check_json(request, content_type, expected)
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def _check_json(request: Request, content_type: str | None = None,
                expected: str = "application/json") -> None:
    """JSON, a ``+json`` type, or no type given; anything else is refused, naming the rule."""
    if content_type is None:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", "") and not (
            content_type.startswith("application/") and content_type.endswith("+json")):
        raise InvalidInput("(body)", "media_type", f"unsupported media type {content_type!r}; "
                           f"send {expected}")


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput("Idempotency-Key", "string_too_long",
                           f"at most {IDEMPOTENCY_KEY_MAX} characters, got {len(key)}")
    return key


def accepted(event: Event | Published) -> Response:
    """202 with the event's ids (``Accepted``), written straight by pydantic-core."""
    body = jsonio.dumps({"event_id": str(event.event_id), "lead_id": event.lead_id,
                         "status": "accepted"})
    return Response(body, status_code=202, media_type="application/json")


def _validate(model: type[FormFill], data: dict[str, Any]) -> FormFill:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def _check_redirect(url: str, settings: IntakeSettings, caller: Caller) -> None:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("_redirect", "absolute_url", "must be an absolute http(s) URL")
    allowed = set(settings.cors_origins)
    allowed |= set(caller.allowed_origins)
    if origin not in allowed:
        raise InvalidInput("_redirect", "allowed_origin",
                           f"{origin} is not an allowed origin (INTAKE_CORS_ORIGINS)")


@router.post("/events", status_code=202, response_model=Accepted, responses=ERRORS,
             openapi_extra=json_body(EngagementIn))
async def post_event(request: Request) -> Response:
    """Accept one marketing event (page view, email open/click, download, webinar, ...).

    A repeat with the same `source_event_id` (or Idempotency-Key) keeps the same event id.
    """
    gate, publisher, now = wiring(request)
    caller = await gate.authorise(request, Scope.EVENTS)
    event_in = await _read_json(request, EngagementIn)
    event = await handlers.record_engagement(
        event_in, publisher=publisher,
        ctx=gate.context(request, caller, idempotency_key(request), now))
    return accepted(event)


@router.post("/events:batch", response_model=BatchResult, openapi_extra=json_body(BatchIn),
             responses={**ERRORS, 200: {"description": "Every item's outcome: accepted, "
                                        "rejected (with errors) or unavailable (retry it)"}})
async def post_events_batch(request: Request) -> Response:
    """Accept many marketing events; a bad item never holds back its neighbours."""
    gate, publisher, now = wiring(request)
    caller = await gate.authorise(request, Scope.EVENTS)
    _check_json(request)
    items = _read_batch(await request.body())
    limit = gate.settings.batch_max_items
    if len(items) > limit:
        raise InvalidInput("items", "max_items", f"at most {limit} items per batch, "
                           f"got {len(items)}")
    result = await handlers.record_batch(
        items, publisher=publisher,
        ctx=gate.context(request, caller, idempotency_key(request), now))
    if result["unavailable"] and not result["accepted"]:
        raise NotAccepted("no item of the batch was acknowledged")
    return Response(BATCH_RESULT.dump_json(result), media_type="application/json")


def _read_batch(body: bytes) -> list[EngagementIn | list[ItemError]]:
    """Every item valid, read in one pass; or each item on its own, a bad one as its errors."""
    with contextlib.suppress(ValidationError):  # some item is invalid: read them one by one
        return list(BatchIn.model_validate_json(body).items)
    try:
        raw_items = BatchEnvelope.model_validate_json(body).items
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    items: list[EngagementIn | list[ItemError]] = []
    for raw in raw_items:
        try:
            items.append(EngagementIn.model_validate(raw))
        except ValidationError as exc:
            items.append(handlers.item_errors(exc))
    return items


@router.post("/activities", status_code=202, response_model=Accepted, responses=ERRORS,
             openapi_extra=json_body(ActivityIn))
async def post_activity(request: Request) -> Response:
    """Accept a call, email or meeting logged by a sales system against a lead."""
    gate, publisher, now = wiring(request)
    caller = await gate.authorise(request, Scope.ACTIVITIES)
    activity = await _read_json(request, ActivityIn)
    event = await handlers.log_activity(
        activity, publisher=publisher,
        ctx=gate.context(request, caller, idempotency_key(request), now))
    return accepted(event)


@router.post("/leads/{lead_id}/feedback", status_code=202, response_model=Accepted,
             responses=ERRORS, openapi_extra=json_body(FeedbackIn))
async def post_feedback(lead_id: LeadId, request: Request) -> Response:
    """Sales feedback on a lead: accepted, rejected or disqualified (with a reason code),
    converted to an opportunity, won or lost."""
    gate, publisher, now = wiring(request)
    caller = await gate.authorise(request, Scope.FEEDBACK)
    feedback = await _read_json(request, FeedbackIn)
    event = await handlers.give_feedback(
        lead_id, feedback, publisher=publisher,
        ctx=gate.context(request, caller, idempotency_key(request), now))
    return accepted(event)


ADAPTER_BODY = {**SECURED, "requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}}}}}


@router.post("/adapters/hubspot", status_code=202, response_model=AdapterResult,
             responses=ERRORS, openapi_extra=ADAPTER_BODY,
             tags=["adapters"])
async def post_hubspot(request: Request) -> AdapterResult:
    """A HubSpot workflow webhook (contact with `form-submissions`).

    With `INTAKE_HUBSPOT_CLIENT_SECRET` set, the v3 signature is required and is enough;
    without it, an API key with `adapters:write` is.
    """
    gate, publisher, now = wiring(request)
    body = await request.body()
    secret = gate.settings.hubspot_client_secret
    if secret is not None:
        hubspot.verify_v3(secret.get_secret_value(), method=request.method,
                          uri=str(request.url), body=body,
                          signature=request.headers.get("x-hubspot-signature-v3"),
                          timestamp_ms=request.headers.get("x-hubspot-request-timestamp"),
                          now=now, max_age_s=gate.settings.hubspot_max_age_s)
    caller = await gate.authorise(request, Scope.ADAPTERS, signed=secret is not None)
    translation = hubspot.translate(_json(body))
    return await _publish_translation(translation, request, publisher, gate, caller, now)


@router.post("/adapters/mautic", status_code=202, response_model=AdapterResult,
             responses=ERRORS, openapi_extra=ADAPTER_BODY,
             tags=["adapters"])
async def post_mautic(request: Request) -> AdapterResult:
    """A Mautic webhook (form submissions, page hits, email opens).

    With `INTAKE_MAUTIC_WEBHOOK_SECRET` set, `Webhook-Signature` is required and is enough;
    without it, an API key with `adapters:write` is.
    """
    gate, publisher, now = wiring(request)
    body = await request.body()
    secret = gate.settings.mautic_webhook_secret
    if secret is not None:
        mautic.verify(secret.get_secret_value(), body, request.headers.get("webhook-signature"))
    caller = await gate.authorise(request, Scope.ADAPTERS, signed=secret is not None)
    translation = mautic.translate(_json(body))
    return await _publish_translation(translation, request, publisher, gate, caller, now)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput("(body)", "json_invalid", f"not valid JSON: {str(exc)[:200]}") from None


async def _publish_translation(translation: Translation, request: Request, publisher: Publisher,
                               gate: Gate, caller: Caller, now: datetime) -> AdapterResult:
    ctx = gate.context(request, caller, None, now)
    accepted: list[Accepted] = []
    for form, source_event_id in translation.forms:
        event = await handlers.submit_form(form, publisher=publisher, ctx=ctx,
                                           source_event_id=source_event_id)
        accepted.append(Accepted(event_id=event.event_id, lead_id=event.lead_id))
    for engagement in translation.engagements:
        sent = await handlers.record_engagement(engagement, publisher=publisher, ctx=ctx)
        accepted.append(Accepted(event_id=uuid.UUID(sent.event_id), lead_id=sent.lead_id))
    return AdapterResult(accepted=accepted, ignored=translation.ignored)


# -- errors, each mapped to one status in one place -------------------------------------------

async def on_invalid_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    REJECTED.labels("invalid_field").inc()
    return problem(422, "Invalid field", f"{exc.field}: {exc.message}",
                   type_=PROBLEMS + "validation",
                   errors=[{"field": exc.field, "rule": exc.rule, "message": exc.message}])


async def on_payload_invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PayloadInvalid)
    REJECTED.labels("adapter_payload").inc()
    return problem(422, "Unexpected payload", f"{exc.path}: {exc.message}",
                   type_=PROBLEMS + "validation",
                   errors=[{"field": exc.path, "rule": "shape", "message": exc.message}])


async def on_not_accepted(_: Request, exc: Exception) -> JSONResponse:
    REJECTED.labels("unavailable").inc()
    return problem(503, "Not accepted", "the event log did not acknowledge in time; "
                   "retry with the same Idempotency-Key", headers={"Retry-After": "1"},
                   type_=PROBLEMS + "unavailable")


async def on_key_store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    REJECTED.labels("key_store_unavailable").inc()
    return problem(503, "Cannot check the key", f"{exc}; retry shortly",
                   headers={"Retry-After": "1"}, type_=PROBLEMS + "unavailable")


async def on_auth_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    REJECTED.labels(exc.rule).inc()
    headers = {"WWW-Authenticate": 'Bearer realm="leadrelay"'} if exc.status == 401 else None
    return problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden",
                   exc.message, type_=PROBLEMS + exc.rule.replace("_", "-"), headers=headers,
                   errors=[{"field": "Authorization", "rule": exc.rule, "message": exc.message}])


async def on_signature_invalid(_: Request, exc: Exception) -> JSONResponse:
    REJECTED.labels("bad_signature").inc()
    return problem(401, "Bad signature", str(exc), type_=PROBLEMS + "bad-signature",
                   errors=[{"field": "signature", "rule": "hmac", "message": str(exc)}])


async def on_rate_limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    REJECTED.labels("rate_limited").inc()
    return problem(429, "Too many requests", f"rate limit of {exc.limit} exceeded; retry in "
                   f"{exc.retry_after_s} s", type_=PROBLEMS + "rate-limited",
                   headers={"Retry-After": str(exc.retry_after_s)})


EXCEPTION_HANDLERS = {
    InvalidInput: on_invalid_input, PayloadInvalid: on_payload_invalid,
    NotAccepted: on_not_accepted, AuthError: on_auth_error,
    KeyStoreUnavailable: on_key_store_unavailable,
    SignatureInvalid: on_signature_invalid, RateLimited: on_rate_limited,
}
