"""What each page shows, gathered from the services' operator APIs (several calls at once)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from leadrelay_shared.clock import utcnow

from . import domain
from .adapters.services import Upstream, segment

MAIN_STAGES = ("inquiry", "mql", "sal", "sql", "opportunity", "won")
SIDE_STAGES = ("nurture", "recycled", "disqualified", "lost")


def period(days: int) -> dict[str, str]:
    now = utcnow()
    return {"since": (now - timedelta(days=days)).isoformat(), "until": now.isoformat()}


async def funnel(up: Upstream, days: int, cut: dict[str, str | None]) -> dict[str, Any]:
    body = await up.get("analytics", "/v1/waterfall", period(days) | cut)
    stages = {s["stage"]: s for g in body["groups"] for s in g["stages"]}
    main = [stages[s] for s in MAIN_STAGES if s in stages]
    # each bar: its entries, and the share of the stage before that reached it
    shares = [None] + [s["cohort_conversion"] for s in main[:-1]]
    chart = domain.bar_chart(
        [
            (
                s["stage"],
                s["entered"],
                f"{s['entered']:,}" + (f" · {domain.percent(c)}" if c else ""),
            )
            for s, c in zip(main, shares, strict=True)
        ]
    )
    return {
        "waterfall": body,
        "main": main,
        "side": [stages[s] for s in SIDE_STAGES if s in stages],
        "chart": chart,
    }


async def sla(up: Upstream, days: int) -> dict[str, Any]:
    """The open clocks now; breaches, alerts and compliance of the period."""
    span = period(days)
    since = {"since": span["since"]}
    clocks, breaches, by_rep, by_team, alerts, leakage = await asyncio.gather(
        up.get("sla", "/v1/sla/open", {"limit": 50}),
        up.get("sla", "/v1/sla/breaches", since | {"limit": 50}),
        up.get("sla", "/v1/sla/compliance", span | {"by": "rep"}),
        up.get("sla", "/v1/sla/compliance", span | {"by": "team"}),
        up.get("sla", "/v1/sla/alerts", since | {"limit": 50}),
        up.get("analytics", "/v1/leakage", span | {"limit": 20}),
    )
    return {
        "clocks": clocks["items"],
        "breaches": breaches["items"],
        "by_rep": by_rep["items"],
        "by_team": by_team["items"],
        "escalations": [a for a in alerts["items"] if a["level"] != "warning"],
        "leakage": leakage,
    }


async def open_clocks(up: Upstream) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await up.get("sla", "/v1/sla/open", {"limit": 50}))["items"]
    return items


ATTRIBUTION_MODELS = ("linear", "first_touch", "last_touch", "u_shaped", "w_shaped", "time_decay")


async def reports(up: Upstream, days: int, by: str, model: str = "linear") -> dict[str, Any]:
    span = period(days)
    speed, attribution, sourcing = await asyncio.gather(
        up.get("analytics", "/v1/speed-to-lead", span | {"by": by}),
        up.get("analytics", "/v1/attribution", span | {"by": "campaign", "model": model}),
        up.get("analytics", "/v1/sourcing", span | {"by": "month"}),
    )
    groups = speed["groups"]
    chart = domain.bar_chart(
        [
            (g["group"] or "all", g["total"]["p50_s"] or 0.0, domain.duration(g["total"]["p50_s"]))
            for g in groups
        ]
    )
    revenue = domain.bar_chart(
        [
            (
                c["key"] or "(none)",
                float(c["revenue"]),
                f"{float(c['revenue']):,.0f} {c['currency']}",
            )
            for c in attribution["credits"]
        ][:12]
    )
    return {
        "speed": speed,
        "speed_chart": chart,
        "attribution": attribution,
        "model": model,
        "models": ATTRIBUTION_MODELS,
        "revenue_chart": revenue,
        "sourcing": sourcing,
    }


async def lead(up: Upstream, lead_id: str) -> dict[str, Any]:
    one = segment(lead_id)
    profile, timeline, assignments, deliveries, sla_story = await asyncio.gather(
        up.get_or_none("scoring", f"/v1/leads/{one}"),
        up.get_or_none("scoring", f"/v1/leads/{one}/timeline"),
        up.get_or_none("router", f"/v1/leads/{one}/assignments"),
        up.get("router", "/v1/deliveries", {"lead_id": lead_id}),
        up.get("sla", f"/v1/sla/leads/{one}"),
    )
    items = (assignments or {}).get("items", [])
    decisions, hooks = await asyncio.gather(
        asyncio.gather(*(up.get("router", f"/v1/assignments/{a['id']}") for a in items)),
        asyncio.gather(
            *(up.get("router", f"/v1/deliveries/{d['id']}") for d in deliveries["items"])
        ),
    )
    return {
        "lead_id": lead_id,
        "profile": profile,
        "timeline": (timeline or {}).get("entries", []),
        "decisions": decisions,
        "webhooks": hooks,
        "sla": sla_story,
        "found": any((profile, timeline, assignments)),
    }


async def routing(up: Upstream) -> dict[str, Any]:
    reps, versions = await asyncio.gather(
        up.get("router", "/v1/routing/reps"), up.get("router", "/v1/routing/config/versions")
    )
    return {"reps": reps, "versions": versions["items"]}


async def deliveries(up: Upstream) -> dict[str, Any]:
    """Dead and failing (pending after a failed attempt) deliveries of router's webhooks and
    sla-monitor's alerts."""
    found: dict[str, Any] = {}
    for service, prefix, what in (("router", "/v1", "webhooks"), ("sla", "/v1/sla", "alerts")):
        dead, pending = await asyncio.gather(
            up.get(service, f"{prefix}/deliveries", {"status": "dead", "limit": 200}),
            up.get(service, f"{prefix}/deliveries", {"status": "pending", "limit": 200}),
        )
        found[service] = {
            "what": what,
            "dead": dead["items"],
            "failing": [d for d in pending["items"] if d["attempts"] > 0],
        }
    return found
