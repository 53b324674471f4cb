"""The console in a real browser (Debian's Chromium, driven by Playwright) against the whole
stack as real processes, with seeded leads: sign-in, every page and its figures, the changes an
operator makes and the ones a viewer or a forged request cannot."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from devstack.ports import free_port
from devstack.receiver import Receiver
from devstack.stack import ROOT, Stack
from leadrelay_shared.identity import lead_id_of
from tests.e2e.stack import CRM_SECRET, OPS_SECRET, fill_form, started
from tests.infra import Infra
from tests.integration.helpers import leadrelay

pytestmark = pytest.mark.e2e

LATE_SECRET = "whsec_Y29uc29sZS1sYXRlLXNlY3JldC1mb3ItdGVzdHM="
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = ROOT / ".data" / "console-screenshots"
OPERATOR = ("olivia", "operator-password-1")
VIEWER = ("victor", "viewer-password-1")
SEEDED = 3


@dataclass
class Console:
    stack: Stack
    url: str
    receiver: Receiver
    late_port: int
    intake: httpx.AsyncClient
    source: str
    emails: list[str]
    browser: Browser

    def api(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.stack.url(service),
            headers={"Authorization": f"Bearer {self.stack.admin_token(service)}"},
            timeout=10,
        )


@pytest.fixture(scope="module")
async def console(
    infra: Infra, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Console]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    workdir = tmp_path_factory.mktemp("console")
    late_port = free_port()  # nobody answers here until a test starts a receiver
    routing = workdir / "routing.yaml"
    routing.write_text(f"""version: console-e2e
reps: [{{id: rep-a, name: Ada}}, {{id: rep-b, name: Ben}}]
teams:
  - {{id: sdr, name: SDR, stages: [mql], members: [rep-a, rep-b], respect_working_hours: false}}
webhooks:
  - {{id: crm, url: "http://127.0.0.1:{receiver.port}/hooks/crm", secret: "{CRM_SECRET}"}}
  - {{id: late, url: "http://127.0.0.1:{late_port}/hooks/late", secret: "{LATE_SECRET}"}}
""")
    policies = workdir / "sla.yaml"
    policies.write_text(f"""version: console-e2e
calendars: [{{id: always, always: true}}]
policies: [{{id: first-touch, calendar: always, first_touch: 2s, warning_at: null}}]
channels:
  - {{id: ops, type: webhook, url: "http://127.0.0.1:{receiver.port}/hooks/ops",
     secret: "{OPS_SECRET}"}}
""")
    env = {
        "ROUTER_CONFIG_PATH": str(routing),
        "ROUTER_WEBHOOK_SCHEDULE_S": "0.1,0.2",
        "SLA_POLICIES_PATH": str(policies),
        "SLA_WEBHOOK_SCHEDULE_S": "0.2,0.5",
        "CONSOLE_POLL_INTERVAL_S": "1",
    }
    async with started(infra, workdir, env) as (stack, database_url):
        for (name, password), role in ((OPERATOR, "operator"), (VIEWER, "viewer")):
            made = await leadrelay(
                database_url,
                *("console", "create-user", name, "--role", role, "--password-stdin"),
                stdin=password + "\n",
            )
            assert made.returncode == 0, made.stderr
        key = await asyncio.to_thread(stack.api_key, "console-e2e")
        intake = httpx.AsyncClient(
            base_url=stack.url("intake"), timeout=10, headers={"Authorization": f"Bearer {key}"}
        )
        source = f"console-{uuid.uuid4().hex[:6]}"
        emails = [await submit(intake, source) for _ in range(SEEDED)]
        for email in emails:
            assert await receiver.wait_for("crm", lead_id_of(email), 30)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield Console(
                stack, stack.url("console"), receiver, late_port, intake, source, emails, browser
            )
            await browser.close()
        await intake.aclose()


async def submit(intake: httpx.AsyncClient, source: str) -> str:
    return (await fill_form(intake, source))[0]


async def signed_in(console: Console, who: tuple[str, str], width: int = 1280) -> Page:
    context = await console.browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(console.url + "/funnel")
    await expect(page).to_have_url(re.compile(r"/login\?next=/funnel$"))
    await page.get_by_label("Username").fill(who[0])
    await page.get_by_label("Password").fill(who[1])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/funnel$"))
    return page


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_a_wrong_password_typed_at_the_keyboard_is_refused_with_a_message(
    console: Console,
) -> None:
    page = await (await console.browser.new_context()).new_page()
    await page.goto(console.url + "/login")
    # by keyboard alone: the name field has the focus, Tab reaches the password, Enter signs in
    await expect(page.get_by_label("Username")).to_be_focused()
    await page.keyboard.type(OPERATOR[0])
    await page.keyboard.press("Tab")
    await page.keyboard.type("not-the-password")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("do not match")
    await shot(page, "sign-in")
    await page.context.close()


async def test_every_page_shows_the_seeded_figures(console: Console) -> None:
    page = await signed_in(console, OPERATOR)
    row = page.locator("#waterfall tr[data-stage=inquiry] [data-field=entered]")
    for _ in range(50):  # analytics may still be reading the last events
        await page.goto(f"{console.url}/funnel?source={console.source}")
        if (await row.inner_text()).strip() == str(SEEDED):
            break
        await asyncio.sleep(0.2)
    await expect(row).to_have_text(str(SEEDED))
    await expect(page.locator("#waterfall tr[data-stage=mql] [data-field=entered]")).to_have_text(
        str(SEEDED)
    )
    await expect(page.locator("figure.chart svg rect.bar")).to_have_count(6)
    await shot(page, "funnel")

    # untouched, every seeded lead breaches its two-second first-touch SLA
    first = lead_id_of(console.emails[0])
    await page.goto(console.url + "/sla")
    await expect(page.locator(f"#breaches a[href='/leads/{first}']")).to_be_visible(timeout=15_000)
    await expect(page.locator("#escalations")).to_contain_text("breach")
    await shot(page, "sla")

    await page.goto(console.url + "/reports")
    await page.get_by_label("Revenue target").fill("500000")
    await page.get_by_label("Average deal (blank: measured)").fill("10000")
    for stage, rate in (("SAL → SQL", "50"), ("SQL → opportunity", "50"), ("MQL → SAL", "50")):
        await page.get_by_label(f"{stage} % (blank: measured)").fill(rate)
    await page.get_by_label("Opportunity → won % (blank: measured)").fill("25")
    await page.get_by_label("Inquiry → MQL % (blank: measured)").fill("10")
    await page.get_by_role("button", name="Plan").click()
    # 500,000 at 10,000 a deal: 50 won, 200 opportunities, 400 SQLs, 800 SALs, 1,600 MQLs
    await expect(page.locator("#plan-table tr[data-stage=won] [data-field=needed]")).to_have_text(
        "50"
    )
    await expect(
        page.locator("#plan-table tr[data-stage=inquiry] [data-field=needed]")
    ).to_have_text("16,000")
    await shot(page, "reports")

    await page.goto(console.url + "/leads")
    await page.get_by_label("Email address or lead id").fill(console.emails[0].upper())
    await page.get_by_role("button", name="Find").click()
    await expect(page).to_have_url(re.compile(f"/leads/{first}$"))
    await expect(page.locator("#lead-stage")).to_have_text("mql")
    await expect(page.locator("article.decision").first).to_contain_text("round_robin")
    await expect(page.locator("#lead-clocks")).to_contain_text("first-touch")
    await expect(page.locator("#timeline")).to_contain_text("form_submitted")
    await shot(page, "lead")

    await page.goto(console.url + "/routing")
    await expect(page.locator("#reps tr[data-rep=rep-a] [data-field=state]")).to_have_text(
        "available"
    )
    await shot(page, "routing")

    await page.goto(console.url + "/scoring")
    await expect(page.locator("#model")).to_contain_text("Version")
    # the shipped model with a stricter MQL bar, replayed over the seeded day
    shipped = (ROOT / "services/scoring/scoring/default_model.yaml").read_text()
    candidate = shipped.replace('version: "default-2026.11"', 'version: "slower"')
    candidate = candidate.replace(
        "mql: {min_grade: B, min_engagement: 50}", "mql: {min_grade: A, min_engagement: 100}"
    )
    await page.get_by_label("Candidate model (YAML or JSON)").fill(candidate)
    await page.get_by_label("Days of history").fill("1")
    await page.get_by_role("button", name="Re-score").click()
    await expect(page.locator("#scoring-what-if-result h3")).to_contain_text("Candidate slower")
    await shot(page, "scoring")

    await page.goto(console.url + "/deliveries")
    dead = page.locator("#router-deliveries table[data-kind=dead] tr[data-delivery]")
    for _ in range(50):  # the late endpoint's deliveries die after two quick retries
        if await dead.count() >= SEEDED:
            break
        await asyncio.sleep(0.2)
        await page.reload()
    await expect(dead).to_have_count(SEEDED)
    await shot(page, "deliveries")

    narrow = await signed_in(console, OPERATOR, width=375)
    await narrow.goto(console.url + "/routing")
    width = await narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the routing page is {width}px wide on a phone"
    await shot(narrow, "routing-phone")
    await narrow.context.close()
    await page.context.close()


async def test_pausing_a_rep_changes_the_next_routing_decision(console: Console) -> None:
    page = await signed_in(console, OPERATOR)
    await page.goto(console.url + "/routing")
    await page.get_by_role("button", name="Pause Ada").click()
    await expect(page.get_by_role("status")).to_contain_text("rep-a is paused")
    await expect(page.locator("#reps tr[data-rep=rep-a] [data-field=state]")).to_have_text("paused")
    await asyncio.sleep(0.5)  # every router instance adopts the change within its reload interval
    owners = []
    for _ in range(2):
        email = await submit(console.intake, console.source)
        routed = await console.receiver.wait_for("crm", lead_id_of(email), 30)
        owners.append(routed[0].payload["data"]["owner"]["id"])
    assert owners == ["rep-b", "rep-b"], owners
    await page.get_by_role("button", name="Resume Ada").click()
    await expect(page.locator("#reps tr[data-rep=rep-a] [data-field=state]")).to_have_text(
        "available"
    )
    await page.context.close()


async def test_the_routing_page_compares_versions_and_replays_a_candidate(
    console: Console,
) -> None:
    page = await signed_in(console, OPERATOR)
    await page.goto(console.url + "/routing")
    # Ben away from yesterday to tomorrow, then back: two more versions
    today = datetime.now(UTC).date()
    ben = page.locator("#reps tr[data-rep=rep-b]")
    await ben.get_by_label("Away from").fill((today - timedelta(days=1)).isoformat())
    await ben.get_by_label("to", exact=True).fill((today + timedelta(days=1)).isoformat())
    await ben.get_by_role("button", name="Set Ben out of office").click()
    await expect(ben.locator("[data-field=state]")).to_have_text("out of office")
    await ben.get_by_role("button", name="Clear Ben's absences").click()
    await expect(ben.locator("[data-field=state]")).to_have_text("available")
    # the pause and the resume above
    # from the version that paused Ada to the one active now (she is not paused in it)
    paused = page.locator("#versions tr", has_text="api:rep:rep-a").locator("code")
    active = page.locator("#versions tbody tr").first.locator("code")
    await page.get_by_label("From", exact=True).select_option(await paused.inner_text())
    await page.get_by_label("To", exact=True).select_option(await active.inner_text())
    await page.get_by_role("button", name="Compare").click()
    await expect(page.locator("#diff-result")).to_contain_text("rep-a: paused true → false")
    candidate = """version: only-ben
reps: [{id: rep-a, name: Ada}, {id: rep-b, name: Ben}]
teams:
  - {id: sdr, name: SDR, stages: [mql], members: [rep-b], respect_working_hours: false}
"""
    await page.get_by_label("Candidate configuration (YAML or JSON)").fill(candidate)
    await page.get_by_label("Days of history").fill("1")
    await page.get_by_role("button", name="Replay").click()
    result = page.locator("#routing-what-if-result")
    async with console.api("router") as router:
        given = [
            (await router.get(f"/v1/leads/{lead_id_of(e)}/assignments")).json()["owner"]
            for e in console.emails
        ]
    to_ada = given.count("rep-a")
    assert to_ada >= 1, given  # round robin gave Ada some of the seeded leads
    await expect(result.locator("h3")).to_contain_text(f"{to_ada} of ")
    await expect(result).to_contain_text("rep-b")
    await shot(page, "routing-what-if")
    await page.context.close()


async def test_replaying_a_dead_delivery_delivers_it(console: Console) -> None:
    late = Receiver(secrets={"late": LATE_SECRET}, port=console.late_port)
    late.start()
    try:
        page = await signed_in(console, OPERATOR)
        await page.goto(console.url + "/deliveries")
        row = page.locator("#router-deliveries table[data-kind=dead] tr[data-delivery]").first
        delivery_id = await row.get_attribute("data-delivery")
        assert delivery_id is not None
        await row.get_by_role("button", name=f"Replay {delivery_id}").click()
        await expect(page.get_by_role("status")).to_contain_text("queued again")
        for _ in range(100):
            if any(r.webhook_id == delivery_id for r in late.received):
                break
            await asyncio.sleep(0.1)
        # it was dead; now it has arrived, once (later leads' deliveries may arrive beside it)
        assert [r.webhook_id for r in late.received].count(delivery_id) == 1
        await page.context.close()
    finally:
        late.stop()


async def test_a_viewer_sees_but_cannot_change_anything(console: Console) -> None:
    page = await signed_in(console, VIEWER)
    await page.goto(console.url + "/routing")
    await expect(page.locator("#reps tr[data-rep=rep-b]")).to_be_visible()
    await expect(page.get_by_role("button", name="Pause Ben")).to_have_count(0)
    await page.goto(console.url + "/deliveries")
    await expect(page.get_by_role("button", name=re.compile("^Replay"))).to_have_count(0)
    # the viewer's own session and token, asking anyway
    token = await page.locator("input[name=csrf_token]").first.input_value()
    answer = await page.request.post(
        console.url + "/routing/reps/rep-b/pause", form={"csrf_token": token}
    )
    assert answer.status == 403 and "viewer" in await answer.text()
    async with console.api("router") as router:
        reps = (await router.get("/v1/routing/reps")).json()["items"]
    assert next(r for r in reps if r["rep_id"] == "rep-b")["paused"] is False
    await shot(page, "viewer-deliveries")
    await page.context.close()


async def test_a_forged_change_without_the_csrf_token_is_refused(console: Console) -> None:
    page = await signed_in(console, OPERATOR)
    forged = await page.request.post(console.url + "/routing/reps/rep-b/pause", form={})
    assert forged.status == 403 and "security token" in await forged.text()
    wrong = await page.request.post(
        console.url + "/routing/reps/rep-b/pause", form={"csrf_token": "guessed"}
    )
    assert wrong.status == 403
    async with console.api("router") as router:
        reps = (await router.get("/v1/routing/reps")).json()["items"]
    assert next(r for r in reps if r["rep_id"] == "rep-b")["paused"] is False
    await page.context.close()


def test_screenshots_are_kept_for_every_page() -> None:
    """Runs after the others (pytest keeps the file's order)."""
    names = {p.stem for p in SCREENSHOTS.glob("*.png")}
    expected = {"sign-in", "funnel", "sla", "reports", "lead", "routing", "scoring", "deliveries"}
    assert expected <= names, expected - names
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
