"""Who is signed in, what they may do, and the CSRF check on every change.

The session is Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure outside development);
it holds the username and the session's CSRF token, never a password or a role: the account is
read again on every request, so a changed role or a removed account takes effect at once. Every
POST carries the token as the ``csrf_token`` form field or the ``X-CSRF-Token`` header (htmx)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from .domain import Role, User
from .errors import CsrfRefused, NotAllowed, SignInRequired

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def start_session(request: Request, username: str) -> None:
    """A fresh session for ``username``: nothing of the one before survives sign-in."""
    request.session.clear()
    request.session["user"] = username
    request.session["csrf"] = secrets.token_urlsafe(32)


def csrf_token(request: Request) -> str:
    """This session's token, made on first use (the sign-in form carries one too)."""
    token: str | None = request.session.get("csrf")
    if token is None:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def current_user(request: Request) -> User:
    username = request.session.get("user")
    if not username:
        raise SignInRequired("sign in to see this page")
    account = await request.app.state.users.get(username)
    if account is None:
        request.session.clear()
        raise SignInRequired("the account no longer exists")
    user = User(account["username"], Role(account["role"]))
    request.state.user = user
    return user


async def csrf_checked(request: Request) -> None:
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise CsrfRefused("the form's security token is missing or stale; reload the page")


async def operator(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.may_change:
        raise NotAllowed(f"{user.username} is a viewer; only an operator may change this")
    return user


Viewer = Annotated[User, Depends(current_user)]
Operator = Annotated[User, Depends(operator)]
Csrf = Depends(csrf_checked)


class SignInLimits:
    """Failed sign-ins per client address per minute (``limits``, in this process's memory);
    past the limit a client waits, whatever it tries."""

    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def allowed(self, client: str) -> bool:
        return bool(await self._limiter.test(self._item, client))

    async def failed(self, client: str) -> None:
        await self._limiter.hit(self._item, client)
