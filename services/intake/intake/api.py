"""intake's HTTP entrypoint: authenticate, decode, call a handler. No rules here; errors are
mapped to problem documents in ``errors``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import RedirectResponse
from fastapi.security.base import SecurityBase
from pydantic import ValidationError

from leadrelay_shared.clock import utcnow

from . import domain, handlers
from .adapters import hubspot, mautic
from .adapters.inbound import Translation
from .auth import AuthError, Caller, KeyStore, Scope, check, parse_key
from .errors import InvalidInput, NotAccepted
from .handlers import Publisher, RequestContext
from .ratelimit import RateLimiter
from .schemas import (
    Accepted,
    ActivityIn,
    AdapterResult,
    BatchIn,
    BatchResult,
    EngagementIn,
    FeedbackIn,
    FormFill,
    ItemError,
)
from .settings import IntakeSettings

IDEMPOTENCY_KEY_MAX = 200
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, an unknown or revoked one, or a bad webhook signature"},
    403: {"description": "The key lacks the scope this endpoint needs"},
    413: {"description": "Body too large"},
    422: {"description": "A field breaks a rule (problem document naming the field and rule)"},
    429: {"description": "Rate limit exceeded; wait for `Retry-After` seconds"},
    503: {"description": "Kafka did not acknowledge in time; retry with the same Idempotency-Key"},
}
# A JSON body may come without a Content-Type, as web forms' scripts often send it.
router = APIRouter(prefix="/v1", tags=["ingestion"], responses=ERRORS, strict_content_type=False)


@dataclass
class Gate:
    """Authentication, scopes and rate limits, in front of every ingestion endpoint."""

    settings: IntakeSettings
    keys: KeyStore
    limiter: RateLimiter

    def __post_init__(self) -> None:
        self.ip_hash_key = self.settings.ip_hash_key.get_secret_value().encode()

    async def authorise(
        self,
        request: Request,
        scope: Scope,
        presented: str | None,
        via_query: bool,
        *,
        signed: bool = False,
    ) -> Caller:
        if presented is None:
            if signed:
                caller = Caller(key_id=None, source=request.url.path.rsplit("/", 1)[-1])
            elif not self.settings.auth_required:
                caller = Caller(key_id=None, source="anonymous")
            else:
                raise AuthError(
                    401,
                    "missing_key",
                    "an API key is required: send "
                    "`Authorization: Bearer <key>` or `X-API-Key: <key>`",
                )
        else:
            parsed = parse_key(presented)
            if parsed is None:
                raise AuthError(
                    401, "malformed_key", "the API key is not in the form lr_sk_... or lr_pk_..."
                )
            kind, key_id = parsed
            if via_query and scope is not Scope.FORMS:
                raise AuthError(
                    401,
                    "key_in_url",
                    "API keys in the URL are only accepted for form posts with a publishable key",
                )
            caller = check(
                await self.keys.get(key_id),
                presented,
                kind=kind,
                scope=scope,
                origin=request.headers.get("origin"),
                via_query=via_query,
            )
        request.state.key_id = caller.key_id
        identity = caller.key_id or f"ip:{client_ip(request, self.settings)}"
        notation = caller.rate_limit or (
            self.settings.rate_limit if caller.key_id else self.settings.anonymous_rate_limit
        )
        await self.limiter.hit(identity, notation)
        return caller


def client_ip(request: Request, settings: IntakeSettings) -> str | None:
    if settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else None


class KeyAuth(SecurityBase):
    """Authorises a request for one scope, as a single FastAPI security dependency: a key in
    ``Authorization: Bearer``, in ``X-API-Key``, or (forms only) in ``?key=``. A JSON endpoint
    also refuses another media type here, before FastAPI validates the body. ``signed_by``
    verifies a marketing tool's signature first and says whether the request was signed (then no
    key is needed)."""

    def __init__(
        self,
        scope: Scope,
        *,
        json_body: bool = True,
        signed_by: Callable[[Gate, Request, bytes], bool] | None = None,
    ) -> None:
        self.model = HTTPBearerModel(
            description="An API key: `Authorization: Bearer lr_sk_...`, or the same key in "
            "`X-API-Key`; HTML forms may send a publishable key as `?key=lr_pk_...`"
        )
        self.scheme_name = "apiKey"
        self.scope = scope
        self.json_body = json_body
        self.signed_by = signed_by

    async def __call__(self, request: Request) -> Caller:
        gate = gate_of(request)
        if self.json_body:
            require_json(request)
        signed = False
        if self.signed_by is not None:
            signed = self.signed_by(gate, request, await request.body())
        presented, via_query = _presented_key(request)
        return await gate.authorise(request, self.scope, presented, via_query, signed=signed)


def require(
    scope: Scope,
    *,
    json_body: bool = True,
    signed_by: Callable[[Gate, Request, bytes], bool] | None = None,
) -> KeyAuth:
    return KeyAuth(scope, json_body=json_body, signed_by=signed_by)


def _presented_key(request: Request) -> tuple[str | None, bool]:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None, False
    if key := request.headers.get("x-api-key"):
        return key.strip(), False
    if key := request.query_params.get("key"):
        return key.strip(), True
    return None, False


def gate_of(request: Request) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


def publisher_of(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


def require_json(request: Request) -> None:
    """JSON, a ``+json`` type, or no type given; anything else is refused, naming the rule."""
    content_type = media_type(request)
    if content_type not in ("application/json", "") and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise InvalidInput(
            "(body)",
            "media_type",
            f"unsupported media type {content_type!r}; send application/json",
        )


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def context(request: Request, caller: Caller, key: str | None) -> RequestContext:
    """What a use case needs of the request: its time, who sent it, its idempotency key and
    its audit record."""
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput(
            "Idempotency-Key",
            "string_too_long",
            f"at most {IDEMPOTENCY_KEY_MAX} characters, got {len(key)}",
        )
    gate = gate_of(request)
    audit = domain.audit(
        key_id=caller.key_id,
        client_ip=client_ip(request, gate.settings),
        user_agent=request.headers.get("user-agent"),
        request_id=correlation_id.get(),
        ip_hash_key=gate.ip_hash_key,
    )
    return RequestContext(
        now=utcnow(), caller_scope=caller.key_id or caller.source, idempotency_key=key, audit=audit
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        json_schema_extra={"maxLength": IDEMPOTENCY_KEY_MAX},
        description="Retry with the same key and the event keeps its id: counted once downstream",
    ),
]
LeadId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


def accepted(event: Any) -> Accepted:
    return Accepted(event_id=event.event_id, lead_id=event.lead_id)


FORM_FIELDS = {
    "type": "object",
    "description": "A plain HTML form. Profile fields by name (`email`, `first_name`, ...), "
    "`utm_*`, `consent_<name>` (on/true/yes), `_redirect` (thank-you page on an "
    "allowed origin); other fields are kept as free fields.",
    "properties": {
        name: {"type": "string"}
        for name in (
            *sorted(domain.FORM_SCALARS),
            "utm_source",
            "utm_campaign",
            "consent_marketing",
            "_redirect",
        )
    },
    "required": ["email"],
    "additionalProperties": {"type": "string"},
}
# A form comes as JSON or straight from an HTML form, so its body is read in ``form_input``
# and described here (FastAPI reads one media type per body parameter).
FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": FormFill.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": FORM_FIELDS},
            "multipart/form-data": {"schema": FORM_FIELDS},
        },
    }
}


async def form_input(request: Request) -> tuple[FormFill, str | None]:
    """The form and its ``_redirect``, from JSON or from an HTML form."""
    content_type = media_type(request)
    try:
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            async with request.form(max_files=0, max_fields=200) as data:
                pairs = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
            fields, redirect = domain.form_from_fields(pairs)
            return FormFill.model_validate(fields), redirect
        require_json(request)
        return FormFill.model_validate_json(await request.body()), None
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post(
    "/forms",
    status_code=202,
    responses={303: {"description": "HTML form with `_redirect`: go to the thank-you page"}},
    openapi_extra=FORM_BODY,
    response_model=Accepted,
)
async def post_form(
    request: Request,
    caller: Annotated[Caller, Depends(require(Scope.FORMS, json_body=False))],
    key: IdempotencyKey = None,
) -> Any:
    """Accept a form fill, as JSON or straight from an HTML form (urlencoded or multipart).

    Answered 202 only after Kafka acknowledged it (acks=all). Browsers may send a publishable
    key as `?key=lr_pk_...`; a `_redirect` field sends them on to a thank-you page.
    """
    form, redirect = await form_input(request)
    if redirect is not None:
        _check_redirect(redirect, gate_of(request).settings, caller)
    event = await handlers.submit_form(
        form, publisher=publisher_of(request), ctx=context(request, caller, key)
    )
    if redirect is not None:
        return RedirectResponse(redirect, status_code=303)
    return accepted(event)


def _check_redirect(url: str, settings: IntakeSettings, caller: Caller) -> None:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("_redirect", "absolute_url", "must be an absolute http(s) URL")
    if origin not in {*settings.cors_origins, *caller.allowed_origins}:
        raise InvalidInput(
            "_redirect",
            "allowed_origin",
            f"{origin} is not an allowed origin (INTAKE_CORS_ORIGINS)",
        )


@router.post("/events", status_code=202)
async def post_event(
    request: Request,
    event_in: EngagementIn,
    caller: Annotated[Caller, Depends(require(Scope.EVENTS))],
    key: IdempotencyKey = None,
) -> Accepted:
    """Accept one marketing event (page view, email open/click, download, webinar, ...).

    A repeat with the same `source_event_id` (or Idempotency-Key) keeps the same event id.
    """
    event = await handlers.record_engagement(
        event_in, publisher=publisher_of(request), ctx=context(request, caller, key)
    )
    return accepted(event)


@router.post(
    "/events:batch",
    responses={
        200: {
            "description": "Every item's outcome: accepted, rejected (with errors) or "
            "unavailable (retry it)"
        }
    },
)
async def post_events_batch(
    request: Request,
    batch: BatchIn,
    caller: Annotated[Caller, Depends(require(Scope.EVENTS))],
    key: IdempotencyKey = None,
) -> BatchResult:
    """Accept many marketing events; a bad item never holds back its neighbours."""
    limit = gate_of(request).settings.batch_max_items
    if len(batch.items) > limit:
        raise InvalidInput(
            "items", "max_items", f"at most {limit} items per batch, got {len(batch.items)}"
        )
    result = await handlers.record_batch(
        _items(batch.items), publisher=publisher_of(request), ctx=context(request, caller, key)
    )
    if result["unavailable"] and not result["accepted"]:
        raise NotAccepted("no item of the batch was acknowledged")
    return result


def _items(raw_items: list[Any]) -> list[EngagementIn | list[ItemError]]:
    """Each item validated on its own: a bad one becomes its errors."""
    items: list[EngagementIn | list[ItemError]] = []
    for raw in raw_items:
        try:
            items.append(EngagementIn.model_validate(raw))
        except ValidationError as exc:
            items.append(handlers.item_errors(exc))
    return items


@router.post("/activities", status_code=202)
async def post_activity(
    request: Request,
    activity: ActivityIn,
    caller: Annotated[Caller, Depends(require(Scope.ACTIVITIES))],
    key: IdempotencyKey = None,
) -> Accepted:
    """Accept a call, email or meeting logged by a sales system against a lead."""
    event = await handlers.log_activity(
        activity, publisher=publisher_of(request), ctx=context(request, caller, key)
    )
    return accepted(event)


@router.post("/leads/{lead_id}/feedback", status_code=202)
async def post_feedback(
    request: Request,
    lead_id: LeadId,
    feedback: FeedbackIn,
    caller: Annotated[Caller, Depends(require(Scope.FEEDBACK))],
    key: IdempotencyKey = None,
) -> Accepted:
    """Sales feedback on a lead: accepted, rejected or disqualified (with a reason code),
    converted to an opportunity, won or lost."""
    event = await handlers.give_feedback(
        lead_id, feedback, publisher=publisher_of(request), ctx=context(request, caller, key)
    )
    return accepted(event)


def hubspot_signed(gate: Gate, request: Request, body: bytes) -> bool:
    """With `INTAKE_HUBSPOT_CLIENT_SECRET` set, the v3 signature is required."""
    settings = gate.settings
    secret = settings.hubspot_client_secret
    if secret is None:
        return False
    hubspot.verify_v3(
        secret.get_secret_value(),
        method=request.method,
        uri=str(request.url),
        body=body,
        signature=request.headers.get("x-hubspot-signature-v3"),
        timestamp_ms=request.headers.get("x-hubspot-request-timestamp"),
        now=utcnow(),
        max_age_s=settings.hubspot_max_age_s,
    )
    return True


def mautic_signed(gate: Gate, request: Request, body: bytes) -> bool:
    """With `INTAKE_MAUTIC_WEBHOOK_SECRET` set, `Webhook-Signature` is required."""
    secret = gate.settings.mautic_webhook_secret
    if secret is None:
        return False
    mautic.verify(secret.get_secret_value(), body, request.headers.get("webhook-signature"))
    return True


# The tools' payloads are read by hand: their signatures are over the raw bytes.
ADAPTER_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post("/adapters/hubspot", status_code=202, tags=["adapters"], openapi_extra=ADAPTER_BODY)
async def post_hubspot(
    request: Request,
    caller: Annotated[
        Caller, Depends(require(Scope.ADAPTERS, json_body=False, signed_by=hubspot_signed))
    ],
) -> AdapterResult:
    """A HubSpot workflow webhook (contact with `form-submissions`).

    With `INTAKE_HUBSPOT_CLIENT_SECRET` set, the v3 signature is required and is enough;
    without it, an API key with `adapters:write` is.
    """
    translation = hubspot.translate(_json(await request.body()))
    return await _publish_translation(
        translation, context(request, caller, None), publisher_of(request)
    )


@router.post("/adapters/mautic", status_code=202, tags=["adapters"], openapi_extra=ADAPTER_BODY)
async def post_mautic(
    request: Request,
    caller: Annotated[
        Caller, Depends(require(Scope.ADAPTERS, json_body=False, signed_by=mautic_signed))
    ],
) -> AdapterResult:
    """A Mautic webhook (form submissions, page hits, email opens).

    With `INTAKE_MAUTIC_WEBHOOK_SECRET` set, `Webhook-Signature` is required and is enough;
    without it, an API key with `adapters:write` is.
    """
    translation = mautic.translate(_json(await request.body()))
    return await _publish_translation(
        translation, context(request, caller, None), publisher_of(request)
    )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput("(body)", "json_invalid", f"not valid JSON: {str(exc)[:200]}") from None


async def _publish_translation(
    translation: Translation, ctx: RequestContext, publisher: Publisher
) -> AdapterResult:
    done: list[Accepted] = []
    for form, source_event_id in translation.forms:
        event = await handlers.submit_form(
            form, publisher=publisher, ctx=ctx, source_event_id=source_event_id
        )
        done.append(accepted(event))
    for engagement in translation.engagements:
        done.append(
            accepted(await handlers.record_engagement(engagement, publisher=publisher, ctx=ctx))
        )
    return AdapterResult(accepted=done, ignored=translation.ignored)
