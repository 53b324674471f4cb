"""API keys: their format, hashing, scopes and the checks made on every request.

A key looks like ``lr_sk_<id>_<secret>`` (server-side, secret) or ``lr_pk_<id>_<secret>``
(publishable: safe to embed in a web page, limited to form fills and to the origins listed on
the key). Only the SHA-256 of the whole key is stored; the key is shown once, at creation. The
``<id>`` part is not secret: it names the key in logs, audits and ``leadrelay keys list``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Scope(StrEnum):
    FORMS = "forms:write"
    EVENTS = "events:write"
    ACTIVITIES = "activities:write"
    FEEDBACK = "feedback:write"
    ADAPTERS = "adapters:write"


class KeyKind(StrEnum):
    SECRET = "sk"
    PUBLISHABLE = "pk"


PUBLISHABLE_SCOPES = frozenset({Scope.FORMS})
_KEY = re.compile(r"^lr_(sk|pk)_([a-z2-7]{12})_([A-Za-z0-9_-]{32,64})$")


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    kind: KeyKind
    source: str
    scopes: frozenset[Scope]
    key_hash: str
    allowed_origins: tuple[str, ...] = ()
    rate_limit: str | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Caller:
    """Who made a request, as far as intake knows: a key, or nobody when auth is off."""

    key_id: str | None
    source: str
    kind: KeyKind | None = None
    rate_limit: str | None = None
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    allowed_origins: tuple[str, ...] = ()


class KeyStore(Protocol):
    async def get(self, key_id: str) -> ApiKey | None:
        """The key with this id (active or revoked), or None."""


class KeyStoreUnavailable(Exception):
    """A key that is not cached could not be looked up: the caller may retry (503)."""


class AuthError(Exception):
    """The request does not carry a usable key (401) or the key may not do this (403)."""

    def __init__(self, status: int, rule: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.rule = rule
        self.message = message


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(kind: KeyKind) -> tuple[str, str]:
    """A fresh key and its id: 60 bits of id, 192 bits of secret."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(12))
    return f"lr_{kind.value}_{key_id}_{secrets.token_urlsafe(24)}", key_id


def parse_key(presented: str) -> tuple[KeyKind, str] | None:
    match = _KEY.match(presented)
    if match is None:
        return None
    return KeyKind(match.group(1)), match.group(2)


def validate_new_key(kind: KeyKind, scopes: frozenset[Scope]) -> None:
    if not scopes:
        raise ValueError("scopes: at least one scope is required")
    if kind is KeyKind.PUBLISHABLE and not scopes <= PUBLISHABLE_SCOPES:
        raise ValueError("scopes: a publishable key may only have forms:write")


def check(
    stored: ApiKey | None,
    presented: str,
    *,
    kind: KeyKind,
    scope: Scope,
    origin: str | None,
    via_query: bool,
) -> Caller:
    """Decide whether ``presented`` may call an endpoint needing ``scope`` (pure)."""
    if stored is None or not hmac.compare_digest(stored.key_hash, hash_key(presented)):
        raise AuthError(401, "unknown_key", "the API key is not known")
    if not stored.active:
        raise AuthError(401, "revoked_key", f"API key {stored.key_id} was revoked")
    if stored.kind is not kind:
        raise AuthError(401, "unknown_key", "the API key is not known")
    if via_query and kind is not KeyKind.PUBLISHABLE:
        raise AuthError(
            401,
            "secret_key_in_url",
            "secret keys are only accepted in the Authorization or X-API-Key header",
        )
    if scope not in stored.scopes:
        raise AuthError(403, "missing_scope", f"API key {stored.key_id} lacks the scope {scope}")
    if (
        kind is KeyKind.PUBLISHABLE
        and stored.allowed_origins
        and origin is not None
        and origin not in stored.allowed_origins
    ):
        raise AuthError(
            403,
            "origin_not_allowed",
            f"origin is not among the allowed origins of key {stored.key_id}",
        )
    return Caller(
        key_id=stored.key_id,
        source=stored.source,
        kind=stored.kind,
        rate_limit=stored.rate_limit,
        scopes=stored.scopes,
        allowed_origins=stored.allowed_origins,
    )
