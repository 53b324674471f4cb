"""Rendering: the Jinja2 templates under ``templates/``, with what every page shows (who is
signed in, the CSRF token its forms carry, messages left by the last change)."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from . import domain

templates = Jinja2Templates(directory=str(resources.files("console") / "templates"))
templates.env.filters["duration"] = domain.duration
templates.env.filters["percent"] = domain.percent
templates.env.filters["number"] = lambda n: "–" if n is None else f"{n:,}"


def _when(value: str | datetime | None) -> str:
    if value is None:
        return "–"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = _when


def flash(request: Request, message: str) -> None:
    """A message shown once, on the next page this session sees."""
    request.session.setdefault("flash", []).append(message)


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    messages = request.session.pop("flash", []) if "session" in request.scope else []
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": getattr(request.state, "user", None),
            "csrf": request.session.get("csrf", "") if "session" in request.scope else "",
            "messages": messages,
            "poll_s": request.app.state.settings.poll_interval_s,
            **context,
        },
        status_code=status_code,
    )
