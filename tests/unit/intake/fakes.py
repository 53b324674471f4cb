"""Fakes for intake's HTTP tests: a publisher that records, a key store in a dict."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from intake.auth import ApiKey, KeyKind, Scope, hash_key, new_key
from intake.bootstrap import create_app
from intake.errors import NotAccepted
from intake.settings import IntakeSettings
from leadrelay_shared.codec import KafkaRecord, decode
from leadrelay_shared.contracts import Event


class FakePublisher:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[Event] = []
        self.fail = fail

    async def publish(self, event: Event) -> None:
        if self.fail:
            raise NotAccepted("broker down")
        self.events.append(event)

    async def publish_records(self, records: Sequence[KafkaRecord]) -> list[Exception | None]:
        """Records are kept as the events a consumer decodes from them."""
        if self.fail:
            return [NotAccepted("broker down")] * len(records)
        self.events.extend(decode(r.headers, r.value, r.key) for r in records)
        return [None] * len(records)


class StaticKeys:
    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}

    def add(
        self,
        *scopes: Scope,
        kind: KeyKind = KeyKind.SECRET,
        origins: tuple[str, ...] = (),
        rate_limit: str | None = None,
    ) -> str:
        key, key_id = new_key(kind)
        self.keys[key_id] = ApiKey(
            key_id=key_id,
            kind=kind,
            source="test",
            scopes=frozenset(scopes),
            key_hash=hash_key(key),
            allowed_origins=origins,
            rate_limit=rate_limit,
        )
        return key

    async def get(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)


ALL_SCOPES = tuple(Scope)


def client(
    publisher: FakePublisher,
    *,
    keys: StaticKeys | None = None,
    key: str | None = None,
    **settings: object,
) -> httpx.AsyncClient:
    """An in-process client with a key of every scope (unless ``key`` says otherwise)."""
    keys = keys or StaticKeys()
    key = key if key is not None else keys.add(*ALL_SCOPES)
    app = create_app(IntakeSettings(**settings), keys=keys)  # type: ignore[arg-type]
    app.state.publisher = publisher
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://intake", headers=headers
    )
