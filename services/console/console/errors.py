"""console's errors, and the page or redirect each one answers with."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response

from leadrelay_shared.web import field_errors

from . import pages


class ConsoleError(Exception):
    """Something the console refuses or cannot do; ``status`` is the answer's HTTP status."""

    status = 400
    title = "Not done"


class Refused(ConsoleError):
    """Input the console will not pass on, naming the field."""

    status = 422
    title = "Not accepted"


class SignInRequired(ConsoleError):
    status = 401
    title = "Sign in first"


class NotAllowed(ConsoleError):
    status = 403
    title = "Not allowed"


class CsrfRefused(ConsoleError):
    """A change without this session's CSRF token: a stale page, or a forged request."""

    status = 403
    title = "Change refused"


class TooManyAttempts(ConsoleError):
    status = 429
    title = "Too many sign-in attempts"


class UpstreamError(ConsoleError):
    """A service the page needs answered with an error, or not at all."""

    status = 502
    title = "A service did not answer as expected"

    def __init__(self, service: str, status: int | None, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service
        self.upstream_status = status


async def on_console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    if isinstance(exc, SignInRequired) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    status, title = exc.status, exc.title
    if isinstance(exc, UpstreamError) and exc.upstream_status in (404, 409, 422, 429):
        # the service refused what was asked: say so, as it did
        status, title = exc.upstream_status, f"{exc.service} refused"
    return _error_page(request, title, str(exc), status)


async def on_invalid_form(request: Request, exc: Exception) -> Response:
    """A form or query the page's route refused: which field, and why, on a page of its own."""
    assert isinstance(exc, RequestValidationError)
    fields = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))
    return _error_page(request, "Not accepted", fields, 422)


def _error_page(request: Request, title: str, message: str, status: int) -> Response:
    """A page of its own, or for htmx the fragment it swaps in where the answer was to go."""
    name = "partials/error.html" if request.headers.get("HX-Request") else "error.html"
    return pages.render(request, name, {"title": title, "message": message}, status_code=status)
