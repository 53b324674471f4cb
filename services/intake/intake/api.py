"""intake's HTTP entrypoint: decode, call a handler, map errors. No rules here."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from leadrelay_shared.web import problem

from . import handlers
from .errors import InvalidInput, NotAccepted
from .handlers import Publisher
from .schemas import Accepted, ActivityIn, FormFill

router = APIRouter(prefix="/v1", tags=["ingestion"])


def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


def get_now() -> datetime:
    return datetime.now(timezone.utc)


PublisherDep = Annotated[Publisher, Depends(get_publisher)]
NowDep = Annotated[datetime, Depends(get_now)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

ERRORS = {
    400: {"description": "A field breaks a rule (problem document naming the field)"},
    413: {"description": "Body too large"},
    422: {"description": "Schema validation failed (problem document naming the field)"},
    503: {"description": "Kafka did not acknowledge in time; retry with the same Idempotency-Key"},
}


@router.post("/forms", status_code=202, response_model=Accepted, responses=ERRORS)
async def post_form(form: FormFill, publisher: PublisherDep, now: NowDep,
                    idempotency_key: IdempotencyKey = None) -> Accepted:
    """Accept a form fill; answered only after Kafka acknowledged it (acks=all)."""
    event = await handlers.submit_form(form, publisher=publisher, now=now,
                                       idempotency_key=idempotency_key)
    return Accepted(event_id=event.event_id, lead_id=event.lead_id)


@router.post("/activities", status_code=202, response_model=Accepted, responses=ERRORS)
async def post_activity(activity: ActivityIn, publisher: PublisherDep, now: NowDep,
                        idempotency_key: IdempotencyKey = None) -> Accepted:
    """Accept a call, email or meeting logged by a sales system against a lead."""
    event = await handlers.log_activity(activity, publisher=publisher, now=now,
                                        idempotency_key=idempotency_key)
    return Accepted(event_id=event.event_id, lead_id=event.lead_id)


async def on_invalid_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return problem(400, "Invalid field", f"{exc.field}: {exc.message}",
                   type_="https://leadrelay.dev/problems/validation",
                   errors=[{"field": exc.field, "rule": exc.rule, "message": exc.message}])


async def on_not_accepted(_: Request, exc: Exception) -> JSONResponse:
    return problem(503, "Not accepted", "the event log did not acknowledge in time; "
                   "retry with the same Idempotency-Key", headers={"Retry-After": "1"},
                   type_="https://leadrelay.dev/problems/unavailable")
