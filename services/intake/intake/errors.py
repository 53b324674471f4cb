"""intake's errors, and the one place that maps each to an HTTP status (a problem document)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from leadrelay_shared.web import problem

from .auth import AuthError, KeyStoreUnavailable
from .ratelimit import RateLimited

REJECTED = Counter("intake_rejections_total", "Requests refused, by reason", ["reason"])
PROBLEMS = "https://leadrelay.dev/problems/"


class IntakeError(Exception):
    """Base of intake's errors."""


class InvalidInput(IntakeError):
    """A field breaks a rule that the schema alone cannot express."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule
        self.message = message


class NotAccepted(IntakeError):
    """Kafka did not acknowledge in time: the request was not accepted and may be retried."""


class SignatureInvalid(IntakeError):
    """A marketing tool's webhook signature does not match its body (or is missing, or old)."""


class PayloadInvalid(IntakeError):
    """A marketing tool's payload does not have the documented shape; the message names the
    path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


async def on_invalid_input(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    REJECTED.labels("invalid_field").inc()
    return problem(
        422,
        "Invalid field",
        f"{exc.field}: {exc.message}",
        type_=PROBLEMS + "validation",
        errors=[{"field": exc.field, "rule": exc.rule, "message": exc.message}],
    )


async def on_payload_invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PayloadInvalid)
    REJECTED.labels("adapter_payload").inc()
    return problem(
        422,
        "Unexpected payload",
        f"{exc.path}: {exc.message}",
        type_=PROBLEMS + "validation",
        errors=[{"field": exc.path, "rule": "shape", "message": exc.message}],
    )


async def on_not_accepted(_: Request, exc: Exception) -> JSONResponse:
    REJECTED.labels("unavailable").inc()
    return problem(
        503,
        "Not accepted",
        "the event log did not acknowledge in time; retry with the same Idempotency-Key",
        headers={"Retry-After": "1"},
        type_=PROBLEMS + "unavailable",
    )


async def on_key_store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    REJECTED.labels("key_store_unavailable").inc()
    return problem(
        503,
        "Cannot check the key",
        f"{exc}; retry shortly",
        headers={"Retry-After": "1"},
        type_=PROBLEMS + "unavailable",
    )


async def on_auth_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    REJECTED.labels(exc.rule).inc()
    headers = {"WWW-Authenticate": 'Bearer realm="leadrelay"'} if exc.status == 401 else None
    return problem(
        exc.status,
        "Unauthorized" if exc.status == 401 else "Forbidden",
        exc.message,
        type_=PROBLEMS + exc.rule.replace("_", "-"),
        headers=headers,
        errors=[{"field": "Authorization", "rule": exc.rule, "message": exc.message}],
    )


async def on_signature_invalid(_: Request, exc: Exception) -> JSONResponse:
    REJECTED.labels("bad_signature").inc()
    return problem(
        401,
        "Bad signature",
        str(exc),
        type_=PROBLEMS + "bad-signature",
        errors=[{"field": "signature", "rule": "hmac", "message": str(exc)}],
    )


async def on_rate_limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    REJECTED.labels("rate_limited").inc()
    return problem(
        429,
        "Too many requests",
        f"rate limit of {exc.limit} exceeded; retry in {exc.retry_after_s} s",
        type_=PROBLEMS + "rate-limited",
        headers={"Retry-After": str(exc.retry_after_s)},
    )


EXCEPTION_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]]
EXCEPTION_HANDLERS = {
    InvalidInput: on_invalid_input,
    PayloadInvalid: on_payload_invalid,
    NotAccepted: on_not_accepted,
    AuthError: on_auth_error,
    KeyStoreUnavailable: on_key_store_unavailable,
    SignatureInvalid: on_signature_invalid,
    RateLimited: on_rate_limited,
}
