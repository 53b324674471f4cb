"""Operator APIs (scoring, router, sla-monitor, analytics): every /v1 route needs a bearer
token; the read token reads and never changes; health and metrics stay open. No database: each
request stops at the token check or, past it, fails on the engine the test never started
(anything but 401)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from analytics.bootstrap import create_app as analytics_app
from analytics.settings import AnalyticsSettings
from router.bootstrap import create_app as router_app
from router.settings import RouterSettings
from scoring.bootstrap import create_app as scoring_app
from scoring.settings import ScoringSettings
from sla_monitor.bootstrap import create_app as sla_app
from sla_monitor.settings import SlaSettings

ADMIN, READER = "admin-secret-token", "reader-secret-token"
UNUSED = "postgresql+asyncpg://nobody@127.0.0.1:1/none"

# (app factory, settings class, a read, a change if the service has one)
SERVICES: dict[
    str, tuple[Callable[[Any], FastAPI], type[Any], tuple[str, str], tuple[str, str] | None]
] = {
    "scoring": (
        scoring_app,
        ScoringSettings,
        ("GET", "/v1/leads/lead-1/timeline"),
        ("POST", "/v1/leads/lead-1/erase"),
    ),
    "router": (
        router_app,
        RouterSettings,
        ("GET", "/v1/leads/lead-1/assignments"),
        ("POST", "/v1/leads/lead-1/reroute"),
    ),
    "sla-monitor": (
        sla_app,
        SlaSettings,
        ("GET", "/v1/sla/leads/lead-1"),
        ("POST", "/v1/sla/deliveries/replay"),
    ),
    "analytics": (analytics_app, AnalyticsSettings, ("GET", "/v1/waterfall"), None),
}


def client(name: str, read_token: str | None = READER) -> httpx.AsyncClient:
    factory, settings, _, _ = SERVICES[name]
    app = factory(settings(database_url=UNUSED, admin_token=ADMIN, read_token=read_token))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://svc"
    )


async def call(c: httpx.AsyncClient, route: tuple[str, str], token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await c.request(route[0], route[1], headers=headers)


@pytest.mark.parametrize("name", SERVICES)
async def test_reads_need_the_read_or_the_admin_token(name: str) -> None:
    read = SERVICES[name][2]
    async with client(name) as c:
        for token in (None, "wrong", ADMIN[:-1]):
            resp = await call(c, read, token)
            assert resp.status_code == 401, (token, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["detail"].startswith("authorization:")
            assert ADMIN not in resp.text and READER not in resp.text
        for token in (READER, ADMIN):
            assert (await call(c, read, token)).status_code != 401, token


@pytest.mark.parametrize("name", [n for n, s in SERVICES.items() if s[3] is not None])
async def test_the_read_token_never_changes_anything(name: str) -> None:
    change = SERVICES[name][3]
    assert change is not None
    async with client(name) as c:
        for token in (None, READER):
            assert (await call(c, change, token)).status_code == 401, token
        assert (await call(c, change, ADMIN)).status_code != 401


@pytest.mark.parametrize("name", SERVICES)
async def test_without_a_read_token_only_the_admin_token_reads(name: str) -> None:
    read = SERVICES[name][2]
    async with client(name, read_token=None) as c:
        assert (await call(c, read, READER)).status_code == 401
        assert (await call(c, read, ADMIN)).status_code != 401


@pytest.mark.parametrize("name", SERVICES)
async def test_health_stays_open(name: str) -> None:
    async with client(name) as c:
        assert (await c.get("/healthz")).status_code == 200


@pytest.mark.parametrize("name", SERVICES)
def test_a_placeholder_admin_token_is_refused_outside_development(name: str) -> None:
    settings = SERVICES[name][1]
    assert settings().admin_token.get_secret_value().startswith("change-me")
    with pytest.raises(ValidationError, match="admin_token is still a placeholder"):
        settings(environment="production")
    settings(environment="production", admin_token="a-real-secret")


@pytest.mark.parametrize("name", SERVICES)
def test_every_endpoint_documents_what_it_answers(name: str) -> None:
    """Each success answer in the OpenAPI document refers to a response model, not a bare
    object, so a client generated from it knows the fields."""
    factory, settings, _, _ = SERVICES[name]
    spec = factory(settings(database_url=UNUSED, admin_token=ADMIN)).openapi()
    bare = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                if code.startswith("2") and "$ref" not in schema:
                    bare.append(f"{method.upper()} {path} {code}")
    assert bare == []
