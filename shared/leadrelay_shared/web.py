"""HTTP pieces every service's API shares: problem documents, CSV answers, health and metrics
routes."""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import clock
from .logging import get_logger
from .yamlconf import ConfigFileError

REQUESTS = Counter(
    "leadrelay_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "leadrelay_http_request_seconds",
    "HTTP request duration by route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
access_log = get_logger("leadrelay.access")

PROBLEM = "application/problem+json"
CSV = "text/csv"
AS_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {}}, "description": "JSON, or CSV with `Accept: text/csv`"}
}


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        # a JSON syntax error's location is a character offset, not a field
        loc = (
            []
            if err.get("type") == "json_invalid"
            else [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        )
        out.append(
            {
                "field": ".".join(loc) or "(body)",
                "rule": err.get("type", "invalid"),
                "message": err.get("msg", "invalid value"),
            }
        )
    return out


def install_problem_handlers(app: FastAPI) -> None:
    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc)
        first = errors[0] if errors else {"field": "(body)", "message": "invalid"}
        return problem(
            422,
            "Invalid request",
            f"{first['field']}: {first['message']}",
            errors=errors,
            type_="https://leadrelay.dev/problems/validation",
        )

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        return problem(
            exc.status_code,
            HTTPStatus(exc.status_code).phrase,
            detail,
            headers=dict(exc.headers or {}),
        )

    async def on_unauthorized(_: Request, exc: Exception) -> Response:
        return problem(
            401, "Unauthorized", str(exc), type_="https://leadrelay.dev/problems/unauthorized"
        )

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Unauthorized, on_unauthorized)


class Unauthorized(Exception):
    """A request without the token its route needs (admin for changes, read or admin for
    reads)."""


def _bearer(authorization: str | None) -> bytes:
    return (authorization or "").removeprefix("Bearer ").strip().encode()


def _matches(given: bytes, *tokens: str | None) -> bool:
    return bool(given) and any(
        token is not None and hmac.compare_digest(given, token.encode()) for token in tokens
    )


async def require_admin(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """A dependency for changes: ``Authorization: Bearer <app.state.admin_token>``."""
    if not _matches(_bearer(authorization), request.app.state.admin_token):
        raise Unauthorized("authorization: a valid admin bearer token is required for changes")


async def require_reader(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """A dependency for reads (lead data, scores, assignments, clocks, deliveries, configuration):
    ``Authorization: Bearer`` with the service's read token or its admin token. A read token
    never allows a change."""
    state = request.app.state
    if not _matches(_bearer(authorization), state.admin_token, state.read_token):
        raise Unauthorized("authorization: a valid read or admin bearer token is required")


def operator_api(app: FastAPI, admin_token: SecretStr, read_token: SecretStr | None) -> Any:
    """Keep the service's operator tokens on ``app.state``; returns the dependency every
    ``/v1`` router of the service is included with (``require_reader``)."""
    app.state.admin_token = admin_token.get_secret_value()
    app.state.read_token = read_token.get_secret_value() if read_token else None
    return Depends(require_reader)


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_wake(request: Request) -> Callable[[], None]:
    """Wakes the service's outbox relay and deliverer after a request committed work."""
    wake: Callable[[], None] = request.app.state.wake
    return wake


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
WakeDep = Annotated[Callable[[], None], Depends(get_wake)]
Admin = Depends(require_admin)

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready, or not ready")
    checks: dict[str, bool] = Field(description="each dependency: kafka, database")


def ops_router(ready: ReadyCheck) -> APIRouter:
    """``/healthz`` (the process is alive), ``/readyz`` (its dependencies answer), ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "a dependency is down"}},
    )
    async def readyz() -> Response:
        checks = await ready()
        ok = all(checks.values())
        body = Readiness(status="ready" if ok else "not ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: Any, max_bytes: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._too_large(scope, receive, send, limit)

    async def _too_large(self, scope: Any, receive: Any, send: Any, limit: int) -> None:
        response = problem(
            413,
            "Payload too large",
            f"request body exceeds the limit of {limit} bytes",
            type_="https://leadrelay.dev/problems/body-too-large",
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    """Raised inside the app's receive() once the body passes the limit."""


class RequestMetricsMiddleware:
    """Counts and times every request by route template, and writes one access-log line.

    The line has method, route template, status, duration, request id and the API key's id;
    never the query string, body or client address (they may carry personal data).
    """

    def __init__(self, app: Any, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests
        # the labelled children, looked up once per (method, route, status): ``labels()`` takes
        # a lock and builds its key every time. The set is bounded, as the metric's own is.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            elapsed = time.perf_counter() - started
            key = (scope["method"], route, str(status))
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    REQUESTS.labels(*key),
                    REQUEST_SECONDS.labels(route),
                )
            children[0].inc()
            children[1].observe(elapsed)
            if self.log_requests and route not in ("/metrics", "/healthz", "/readyz"):
                access_log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                    key_id=(scope.get("state") or {}).get("key_id"),
                )


def install_request_tracking(app: FastAPI, *, log_requests: bool = True) -> None:
    """Request ids (``X-Request-ID``, made up when absent, echoed back and put on every log line
    written while the request runs) and per-route metrics."""
    app.add_middleware(RequestMetricsMiddleware, log_requests=log_requests)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        validator=lambda value: 0 < len(value) <= 64 and value.isprintable(),
    )


def wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "")


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A row with nested objects spread into ``outer_inner`` columns, lists joined by spaces."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}_")
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = " ".join(map(str, value))
        else:
            out[f"{prefix}{key}"] = value
    return out


def as_csv(rows: Sequence[dict[str, Any]], filename: str) -> Response:
    """Rows as CSV, columns in the order of the first row."""
    out = io.StringIO()
    rows = [_flat(r) for r in rows]
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def window(
    days: Annotated[int | None, Query(ge=1, le=366, description="the last N days")] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="window start")] = None,
    to: Annotated[datetime | None, Query(description="window end (default: now)")] = None,
) -> tuple[datetime, datetime]:
    """The window of history a what-if replays: ``days`` back from now (30 by default), or
    ``from`` (and ``to``)."""
    try:
        return clock.window(days, from_, to)
    except clock.WindowError as exc:
        raise _invalid_query(exc.field, exc.message) from None


WindowDep = Annotated[tuple[datetime, datetime], Depends(window)]


def on_invalid_file(
    title: str, slug: str
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The handler of a configuration that does not validate: a 422 with each problem, naming
    its line or field."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConfigFileError)
        return problem(
            422,
            title,
            "; ".join(exc.problems),
            type_=f"https://leadrelay.dev/problems/{slug}",
            errors=[{"detail": p} for p in exc.problems],
        )

    return handle


async def one_replay_at_a_time(request: Request) -> AsyncIterator[None]:
    """A what-if takes seconds of CPU beside the service's own work, so an instance runs one at
    a time; another asked meanwhile is refused with 429 and ``Retry-After``."""
    state = request.app.state
    if not hasattr(state, "replay_lock"):
        state.replay_lock = asyncio.Lock()
    lock: asyncio.Lock = state.replay_lock
    if lock.locked():
        raise StarletteHTTPException(
            429, "a what-if is already running on this instance", {"Retry-After": "10"}
        )
    async with lock:
        yield


ReplaySlot = Depends(one_replay_at_a_time)


def _invalid_query(field: str, message: str) -> RequestValidationError:
    """A problem with a query parameter, answered as pydantic's are (naming the field)."""
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error"}]
    )
