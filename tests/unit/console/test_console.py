"""The console without a browser: its pure rules, its accounts over a fake store, and its app
over fake services (httpx's MockTransport), for what a browser test cannot see cheaply."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from console import domain, handlers
from console.adapters.services import Upstream
from console.bootstrap import create_app
from console.domain import Role
from console.settings import ConsoleSettings
from leadrelay_shared.contracts import lead_id_for
from tests.factories import T0

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class FakeUsers:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def get(self, username: str) -> dict[str, Any] | None:
        return self.rows.get(username)

    async def put(self, username: str, password_hash: str, role: str, now: datetime) -> bool:
        new = username not in self.rows
        self.rows[username] = {"username": username, "password_hash": password_hash, "role": role}
        return new

    async def signed_in(self, username: str, now: datetime, new_hash: str | None) -> None:
        self.rows[username]["signed_in_at"] = now
        if new_hash is not None:
            self.rows[username]["password_hash"] = new_hash


def test_durations_read_in_their_two_largest_units() -> None:
    assert [domain.duration(s) for s in (None, 0, 12.4, 187, 4 * 3600 + 300, 2 * 86400 + 7300)] == [
        "–",
        "0s",
        "12s",
        "3m 07s",
        "4h 05m",
        "2d 2h",
    ]
    assert domain.duration(-75) == "-1m 15s"


def test_a_bar_chart_scales_to_a_rounded_axis() -> None:
    assert [domain.nice_ceiling(v) for v in (0, 3, 7, 12, 240, 1001)] == [0, 5, 10, 20, 250, 2000]
    chart = domain.bar_chart([("inquiry", 400, "400"), ("mql", 100, "100"), ("won", 0, "0")])
    inquiry, mql, won = chart.bars
    full = chart.baseline - chart.ticks[-1][0]
    assert inquiry.height == pytest.approx(full * 400 / 500) and won.height == 0
    assert mql.height == pytest.approx(inquiry.height / 4)
    assert inquiry.y + inquiry.height == pytest.approx(chart.baseline)
    assert inquiry.x < mql.x < won.x and chart.ticks[-1][1] == "500"


def test_a_search_names_the_lead_by_its_id_or_by_the_email_intake_took() -> None:
    lead = lead_id_for("ada@northwind.example")
    assert domain.lead_id_from_search("  Ada@Northwind.EXAMPLE ") == lead
    assert domain.lead_id_from_search(lead.upper()) == lead
    for junk in ("", "ada@", "aa0fc4b8"):
        with pytest.raises(domain.SearchError):
            domain.lead_id_from_search(junk)


def test_an_account_needs_a_plain_name_and_a_long_password() -> None:
    domain.check_account("olivia.ops", "a long enough password")
    with pytest.raises(domain.AccountError, match="username"):
        domain.check_account("-x", "a long enough password")
    with pytest.raises(domain.AccountError, match="password"):
        domain.check_account("olivia", "short")
    with pytest.raises(domain.AccountError, match="password"):
        domain.check_account("olivia-the-operator", "OLIVIA-THE-OPERATOR")


async def test_sign_in_takes_the_right_password_only_and_renews_an_aged_hash() -> None:
    users = FakeUsers()
    assert await handlers.create_user(users, FAST, "olivia", "operator-password", Role.OPERATOR, T0)
    assert users.rows["olivia"]["password_hash"].startswith("$argon2id$")
    assert "operator-password" not in json.dumps(users.rows)
    hasher = PasswordHasher()  # stronger than the account's hash: it is renewed on sign-in
    assert await handlers.sign_in(users, hasher, "olivia", "wrong", T0) is None
    assert await handlers.sign_in(users, hasher, "nobody", "operator-password", T0) is None
    user = await handlers.sign_in(users, hasher, "olivia", "operator-password", T0)
    assert user == domain.User("olivia", Role.OPERATOR) and user.may_change
    assert not hasher.check_needs_rehash(users.rows["olivia"]["password_hash"])


Handler = Callable[[httpx.Request], httpx.Response]


class Services:
    """The other services, answering as a test tells them; every request is kept."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.answers: dict[tuple[str, str], httpx.Response] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        found = self.answers.get((request.method, request.url.path))
        return found if found is not None else httpx.Response(404, json={"detail": "no route"})


@pytest.fixture
async def app() -> AsyncIterator[tuple[httpx.AsyncClient, Services, FakeUsers]]:
    settings = ConsoleSettings(sign_in_attempts_per_minute=3)
    application = create_app(settings)
    services = Services()
    users = FakeUsers()
    for name, role in (("olivia", Role.OPERATOR), ("victor", Role.VIEWER)):
        await handlers.create_user(users, FAST, name, f"{name}-password-1", role, T0)
    application.state.users = users
    application.state.hasher = FAST
    application.state.upstream = Upstream(settings, transport=httpx.MockTransport(services))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, services, users
    await application.state.upstream.close()


def token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


async def sign_in(client: httpx.AsyncClient, name: str) -> str:
    csrf = token(await client.get("/login"))
    resp = await client.post(
        "/login",
        data={"username": name, "password": f"{name}-password-1", "csrf_token": csrf, "next": "/"},
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    return token(await client.get("/login"))


async def test_pages_need_a_session_and_the_cookie_is_guarded(app: Any) -> None:
    client, _, _ = app
    resp = await client.get("/funnel?days=30")
    assert resp.status_code == 303 and resp.headers["location"] == "/login?next=/funnel%3Fdays%3D30"
    page = await client.get("/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_sign_in_goes_nowhere_but_this_site(app: Any) -> None:
    client, _, _ = app
    csrf = token(await client.get("/login"))
    resp = await client.post(
        "/login",
        data={
            "username": "olivia",
            "password": "olivia-password-1",
            "csrf_token": csrf,
            "next": "//evil.example/",
        },
    )
    assert resp.headers["location"] == "/funnel"
    for elsewhere in ("/\t/evil.example/", "/\\evil.example", "https://evil.example/"):
        csrf = token(await client.get("/login"))
        resp = await client.post(
            "/login",
            data={
                "username": "olivia",
                "password": "olivia-password-1",
                "csrf_token": csrf,
                "next": elsewhere,
            },
        )
        assert resp.headers["location"] == "/funnel", elsewhere


async def test_what_a_page_names_stays_one_segment_of_a_services_path(app: Any) -> None:
    client, services, _ = app
    await sign_in(client, "victor")
    await client.get("/leads/x%3Fstatus=dead%23")  # a lead id holding "?" and "#"
    paths = {r.url.raw_path.decode() for r in services.seen}
    assert "/v1/leads/x%3Fstatus%3Ddead%23" in paths
    assert all(r.url.query == b"" for r in services.seen if "/leads/" in r.url.path)


async def test_failed_sign_ins_are_limited_per_client(app: Any) -> None:
    client, _, _ = app
    csrf = token(await client.get("/login"))
    attempt = {"username": "olivia", "password": "wrong", "csrf_token": csrf}
    codes = [(await client.post("/login", data=attempt)).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    right = attempt | {"password": "olivia-password-1"}
    assert (await client.post("/login", data=right)).status_code == 429


async def test_a_change_needs_the_csrf_token_and_an_operator(app: Any) -> None:
    client, services, _ = app
    services.answers[("PATCH", "/v1/routing/reps/rep-a")] = httpx.Response(
        200, json={"version": "v2", "previous": "v1", "diff": {}}
    )
    csrf = await sign_in(client, "victor")
    refused = await client.post("/routing/reps/rep-a/pause", data={"csrf_token": csrf})
    assert refused.status_code == 403 and "viewer" in refused.text
    csrf = await sign_in(client, "olivia")
    forged = await client.post("/routing/reps/rep-a/pause", data={"csrf_token": "guess"})
    assert forged.status_code == 403 and "security token" in forged.text
    assert services.seen == []  # nothing reached router
    done = await client.post("/routing/reps/rep-a/pause", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/routing"
    (patch,) = services.seen
    assert json.loads(patch.content) == {"paused": True}
    assert patch.headers["authorization"] == "Bearer change-me-router-admin"


async def test_a_service_that_fails_or_refuses_is_named_on_the_page(app: Any) -> None:
    client, services, _ = app
    await sign_in(client, "victor")
    services.answers[("GET", "/v1/waterfall")] = httpx.Response(500, text="boom")
    failed = await client.get("/funnel")
    assert failed.status_code == 502 and "analytics: answered 500" in failed.text
    csrf = token(await client.get("/login"))
    services.answers[("POST", "/v1/plan")] = httpx.Response(
        422, json={"detail": "x", "errors": [{"field": "rates.mql_to_sal", "message": "is 0"}]}
    )
    refused = await client.post(
        "/reports/plan",
        data={"revenue_target": "1000", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422 and "rates.mql_to_sal: is 0" in refused.text
    assert "<html" not in refused.text  # htmx swaps a fragment, not a page
    bad = await client.post("/reports/plan", data={"revenue_target": "-1", "csrf_token": csrf})
    assert bad.status_code == 422 and "revenue_target" in bad.text
