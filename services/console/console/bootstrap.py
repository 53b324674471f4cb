"""What the console runs: its pages, its sessions and its accounts; no consumer, no Kafka."""

from __future__ import annotations

from importlib import resources

from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure
from leadrelay_shared.service import Service

from . import api
from .adapters.services import Upstream
from .adapters.users import Users
from .auth import SignInLimits
from .errors import ConsoleError, on_console_error, on_invalid_form
from .settings import ConsoleSettings

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    configure("console", settings.log_level)
    engine = make_engine(settings.database_url, name="leadrelay-console", pool_size=5)
    service = Service("console", settings, engine=engine, kafka=False)
    upstream = Upstream(settings)
    service.on_close(upstream.close)
    app = service.app(
        title="console",
        routers=[api.router],
        description="The web page where ops, sales and marketing see and steer the pipeline.",
        exception_handlers={
            ConsoleError: on_console_error,
            RequestValidationError: on_invalid_form,
        },
        operator=False,
        settings=settings,
        upstream=upstream,
        users=Users(engine),
        hasher=PasswordHasher(),
        sign_ins=SignInLimits(settings.sign_in_attempts_per_minute),
    )
    app.mount(
        "/static", StaticFiles(directory=str(resources.files("console") / "static")), "static"
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret.get_secret_value(),
        session_cookie="leadrelay_console",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.environment != "development",
    )
    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """What a browser should hold the pages to: scripts and styles from this site only, never
    framed, no sniffing of types."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
