"""HTTP pieces every service's API shares: problem documents, health and metrics routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, *, type_: str = "about:blank",
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
            ) -> JSONResponse:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append({"field": ".".join(loc) or "(body)", "rule": err.get("type", "invalid"),
                    "message": err.get("msg", "invalid value")})
    return out


def install_problem_handlers(app: FastAPI) -> None:
    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = field_errors(exc)
        first = errors[0] if errors else {"field": "(body)", "message": "invalid"}
        return problem(422, "Invalid request",
                       f"{first['field']}: {first['message']}", errors=errors,
                       type_="https://leadrelay.dev/problems/validation")

    app.add_exception_handler(RequestValidationError, on_validation)


ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


def ops_router(ready: ReadyCheck) -> APIRouter:
    """``/healthz`` (the process is alive), ``/readyz`` (its dependencies answer), ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> Response:
        checks = await ready()
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = problem(413, "Payload too large",
                           f"request body exceeds the limit of {self.max_bytes} bytes",
                           type_="https://leadrelay.dev/problems/body-too-large")
        await response(scope, receive, send)


class _TooLarge(Exception):
    """Raised inside the app's receive() once the body passes the limit."""
