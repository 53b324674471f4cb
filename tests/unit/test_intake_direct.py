"""intake's short way to its ingestion endpoints (``intake.direct``): which requests take it, and
that every answer on it is the answer FastAPI's way gives."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from intake import api
from intake.auth import Scope
from intake.bootstrap import create_app
from intake.settings import IntakeSettings
from tests.unit.intake_fakes import ALL_SCOPES, FakePublisher, StaticKeys

ORIGIN = "https://www.northwind.example"
EVENT = {"email": "ada@northwind.example", "engagement_type": "page_view",
         "source_event_id": "ev-1"}


def _app(publisher: FakePublisher, keys: StaticKeys, **settings: Any) -> Any:
    app = create_app(IntakeSettings(**settings), keys=keys)
    app.state.publisher = publisher
    return app


async def test_posts_to_the_ingestion_paths_skip_the_router_and_nothing_else_does() -> None:
    """A route put first in the router answers whatever reaches the router: the ingestion
    POSTs never do; other methods, paths with parameters and the adapters do."""
    keys = StaticKeys()
    key = keys.add(*ALL_SCOPES)
    app = _app(FakePublisher(), keys)

    async def teapot(_: Request) -> PlainTextResponse:
        return PlainTextResponse("router", status_code=418)

    app.router.routes.insert(0, Route("/{rest:path}", teapot, methods=["GET", "POST"]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake",
                                 headers={"Authorization": f"Bearer {key}"}) as c:
        direct = [(await c.post(path, json=body)).status_code for path, body in (
            ("/v1/events", EVENT), ("/v1/forms", {"email": "ada@northwind.example"}),
            ("/v1/events:batch", {"items": [EVENT]}),
            ("/v1/activities", {"email": "ada@northwind.example", "activity_type": "call"}))]
        routed = [(await c.post("/v1/leads/L1/feedback", json={"outcome": "accepted"})),
                  (await c.get("/v1/events")), (await c.post("/v1/adapters/mautic", json={}))]
    assert direct == [202, 202, 200, 202]
    assert [r.status_code for r in routed] == [418, 418, 418]


@dataclass
class Case:
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    data: dict[str, str] | None = None
    scopes: tuple[Scope, ...] = ALL_SCOPES
    send_key: bool = True
    broker_down: bool = False
    repeat: int = 1
    settings: dict[str, Any] = field(default_factory=dict)


CASES = {
    "accepted": Case("/v1/events", EVENT, headers={"X-Request-ID": "req-1"}),
    "idempotency key": Case("/v1/events", EVENT, headers={"Idempotency-Key": "k-1"}),
    "idempotency key too long": Case("/v1/events", EVENT, headers={"Idempotency-Key": "k" * 201}),
    "field broken": Case("/v1/events", {**EVENT, "engagement_type": "telepathy"}),
    "not json": Case("/v1/events", content=b'{"email": ',
                     headers={"Content-Type": "application/json"}),
    "media type": Case("/v1/events", content=b"email=a", headers={"Content-Type": "text/plain"}),
    "no key": Case("/v1/events", EVENT, send_key=False),
    "wrong scope": Case("/v1/events", EVENT, scopes=(Scope.FORMS,)),
    "too large": Case("/v1/events", content=b"{" + b" " * 70_000 + b"}",
                      headers={"Content-Type": "application/json"}),
    "broker down": Case("/v1/events", EVENT, broker_down=True),
    "rate limited": Case("/v1/events", EVENT, repeat=3, settings={"rate_limit": "2/minute"}),
    "batch, one bad item": Case("/v1/events:batch", {"items": [EVENT, {"email": "x"}]}),
    "batch, broker down": Case("/v1/events:batch", {"items": [EVENT]}, broker_down=True),
    "activity": Case("/v1/activities", {"email": "ada@northwind.example",
                                        "activity_type": "call"}),
    "json form": Case("/v1/forms", {"email": "ada@northwind.example"}),
    "html form from a browser": Case(
        "/v1/forms", data={"email": "ada@northwind.example", "_redirect": f"{ORIGIN}/thanks"},
        headers={"Origin": ORIGIN}, settings={"cors_origins": [ORIGIN]}),
    "redirect elsewhere": Case(
        "/v1/forms", data={"email": "ada@northwind.example", "_redirect": "https://evil.example"},
        settings={"cors_origins": [ORIGIN]}),
}


async def _answer(case: Case, keys: StaticKeys, key: str) -> tuple[int, dict[str, str], Any]:
    app = _app(FakePublisher(fail=case.broker_down), keys, **case.settings)
    headers = {**({"Authorization": f"Bearer {key}"} if case.send_key else {}), **case.headers}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://intake") as c:
        for _ in range(case.repeat):
            response = await c.post(case.path, json=case.body, content=case.content,
                                    data=case.data, headers=headers)
    kept = {name: value for name, value in response.headers.items()
            if name not in ("x-request-id", "content-length", "retry-after")}
    if case.headers.get("X-Request-ID"):
        kept["x-request-id"] = response.headers["x-request-id"]
    body = response.json() if response.headers.get("content-type", "").endswith("json") \
        else response.text
    return response.status_code, kept, _without_ids(body)


def _without_ids(body: Any) -> Any:
    """Event ids are new in each app (a key's id is part of them); everything else must match."""
    if isinstance(body, dict):
        return {k: "<id>" if k == "event_id" else _without_ids(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_without_ids(v) for v in body]
    return body


@pytest.mark.parametrize("name", CASES)
async def test_the_short_way_answers_as_fastapis_way(name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    keys = StaticKeys()
    key = keys.add(*case.scopes)
    direct = await _answer(case, keys, key)
    monkeypatch.setattr(api, "DIRECT_PATHS", ())
    routed = await _answer(case, keys, key)
    assert direct == routed
    assert json.dumps(direct[2])  # an answer worth comparing: a body was read back


async def test_an_unexpected_error_is_a_bare_500_both_ways(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(FakePublisher):
        async def publish_record(self, record: Any) -> None:
            raise RuntimeError("a bug")

    answers = []
    for paths in (api.DIRECT_PATHS, ()):
        monkeypatch.setattr(api, "DIRECT_PATHS", paths)
        keys = StaticKeys()
        app = _app(Broken(), keys)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
            r = await c.post("/v1/events", json=EVENT,
                             headers={"Authorization": f"Bearer {keys.add(*ALL_SCOPES)}"})
        answers.append((r.status_code, r.text))
        with pytest.raises(RuntimeError, match="a bug"):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://intake") as c:
                await c.post("/v1/events", json=EVENT,
                             headers={"Authorization": f"Bearer {keys.add(*ALL_SCOPES)}"})
    assert answers[0] == answers[1] == (500, "Internal Server Error")


def test_a_short_way_to_a_route_that_is_not_there_stops_the_app_being_made() -> None:
    from intake.direct import DirectApp

    app = DirectApp(direct_paths=("/v1/events", "/v1/nowhere"))

    @app.post("/v1/events")
    async def events(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    with pytest.raises(RuntimeError, match="/v1/nowhere"):
        app.direct_routes()
