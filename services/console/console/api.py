"""The console's pages. Each route reads what it shows through ``views`` (the services' APIs)
or asks a service to change something; every change needs an operator and the CSRF token."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadrelay_shared.clock import utcnow

from . import domain, handlers, views
from .adapters.services import Upstream, segment
from .auth import Csrf, Operator, Viewer, csrf_token, start_session
from .errors import Refused, TooManyAttempts
from .pages import flash, render

router = APIRouter(default_response_class=HTMLResponse)

Days = Annotated[int, Query(ge=1, le=3650)]
Rate = Annotated[float | None, Form(gt=0, le=100, description="per cent; blank: measured")]
Service = Literal["router", "sla"]
PREFIX = {"router": "/v1", "sla": "/v1/sla"}
MAX_CANDIDATE = 2_000_000


async def get_upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


UpstreamDep = Annotated[Upstream, Depends(get_upstream)]


def _htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _local(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only, never another host (browsers drop
    tabs and newlines from a URL, so none may hide a second slash)."""
    if (
        target
        and target.isprintable()
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return "/funnel"


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    csrf_token(request)
    return render(request, "login.html", {"next": _local(next), "error": None})


@router.post("/login", dependencies=[Csrf])
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    state = request.app.state
    client = request.client.host if request.client else "unknown"
    if not await state.sign_ins.allowed(client):
        raise TooManyAttempts("wait a minute before trying again")
    user = await handlers.sign_in(state.users, state.hasher, username, password, utcnow())
    if user is None:
        await state.sign_ins.failed(client)
        return render(
            request,
            "login.html",
            {"next": _local(next), "error": "That username and password do not match."},
            status_code=401,
        )
    start_session(request, user.username)
    return _back(_local(next))


@router.post("/logout", dependencies=[Csrf])
async def logout(request: Request) -> Response:
    request.session.clear()
    return _back("/login")


@router.get("/")
async def home(_: Viewer) -> Response:
    return _back("/funnel")


@router.get("/funnel")
async def funnel(
    request: Request,
    _: Viewer,
    up: UpstreamDep,
    days: Days = 90,
    source: str | None = None,
    campaign: str | None = None,
    team: str | None = None,
) -> Response:
    cut = {"source": source, "campaign": campaign, "team": team}
    data = await views.funnel(up, days, cut)
    return render(request, "funnel.html", {"page": "funnel", "days": days, **cut, **data})


@router.get("/sla")
async def sla(request: Request, _: Viewer, up: UpstreamDep, days: Days = 30) -> Response:
    data = await views.sla(up, days)
    return render(request, "sla.html", {"page": "sla", "days": days, **data})


@router.get("/sla/clocks")
async def clocks(request: Request, _: Viewer, up: UpstreamDep) -> Response:
    """The open clocks alone: what the SLA page polls."""
    return render(request, "partials/clocks.html", {"clocks": await views.open_clocks(up)})


@router.get("/reports")
async def reports(
    request: Request,
    _: Viewer,
    up: UpstreamDep,
    days: Days = 30,
    by: Literal["team", "rep"] = "team",
    model: Annotated[str, Query(max_length=20)] = "linear",
) -> Response:
    data = await views.reports(up, days, by, model)
    return render(
        request, "reports.html", {"page": "reports", "days": days, "by": by, "plan": None, **data}
    )


@router.post("/reports/plan", dependencies=[Csrf])
async def plan(
    request: Request,
    _: Viewer,
    up: UpstreamDep,
    revenue_target: Annotated[float, Form(gt=0)],
    window_days: Annotated[int, Form(ge=1, le=3650)] = 180,
    marketing_share: Annotated[float, Form(gt=0, le=1)] = 1.0,
    avg_deal_size: Annotated[float | None, Form(gt=0)] = None,
    inquiry_to_mql: Rate = None,
    mql_to_sal: Rate = None,
    sal_to_sql: Rate = None,
    sql_to_opportunity: Rate = None,
    opportunity_to_won: Rate = None,
) -> Response:
    """The planner: how many leads the revenue target needs (it changes nothing, so a viewer
    may ask)."""
    body: dict[str, Any] = {
        "revenue_target": revenue_target,
        "window_days": window_days,
        "marketing_share": marketing_share,
    }
    if avg_deal_size is not None:
        body["avg_deal_size"] = avg_deal_size
    given = {
        "inquiry_to_mql": inquiry_to_mql,
        "mql_to_sal": mql_to_sal,
        "sal_to_sql": sal_to_sql,
        "sql_to_opportunity": sql_to_opportunity,
        "opportunity_to_won": opportunity_to_won,
    }
    body["rates"] = {k: v / 100 for k, v in given.items() if v is not None}
    answer = await up.send("analytics", "POST", "/v1/plan", json=body)
    if _htmx(request):
        return render(request, "partials/plan.html", {"plan": answer})
    data = await views.reports(up, 30, "team")
    return render(
        request,
        "reports.html",
        {"page": "reports", "days": 30, "by": "team", "plan": answer, **data},
    )


@router.get("/leads")
async def find_lead(request: Request, _: Viewer, q: str = "") -> Response:
    if not q:
        return render(request, "search.html", {"page": "leads", "q": "", "error": None})
    try:
        lead_id = domain.lead_id_from_search(q)
    except domain.SearchError as exc:
        return render(
            request, "search.html", {"page": "leads", "q": q, "error": str(exc)}, status_code=422
        )
    return _back(f"/leads/{lead_id}")


@router.get("/leads/{lead_id}")
async def lead(
    request: Request, _: Viewer, up: UpstreamDep, lead_id: Annotated[str, Path(max_length=100)]
) -> Response:
    data = await views.lead(up, lead_id)
    return render(
        request, "lead.html", {"page": "leads", **data}, status_code=200 if data["found"] else 404
    )


@router.get("/routing")
async def routing(request: Request, _: Viewer, up: UpstreamDep) -> Response:
    data = await views.routing(up)
    return render(request, "routing.html", {"page": "routing", **data})


@router.get("/routing/diff")
async def routing_diff(
    request: Request,
    _: Viewer,
    up: UpstreamDep,
    from_version: Annotated[str, Query(alias="from")],
    to_version: Annotated[str, Query(alias="to")],
) -> Response:
    answer = await up.get(
        "router", "/v1/routing/config/diff", {"from": from_version, "to": to_version}
    )
    return render(request, "partials/diff.html", {"answer": answer})


async def _patch_rep(
    up: Upstream, request: Request, rep_id: str, changes: dict[str, Any], said: str
) -> Response:
    answer = await up.send("router", "PATCH", f"/v1/routing/reps/{segment(rep_id)}", json=changes)
    flash(request, f"{rep_id} {said}; routing configuration {answer['version']} is active.")
    return _back("/routing")


@router.post("/routing/reps/{rep_id}/pause", dependencies=[Csrf])
async def pause(request: Request, _: Operator, up: UpstreamDep, rep_id: str) -> Response:
    return await _patch_rep(up, request, rep_id, {"paused": True}, "is paused")


@router.post("/routing/reps/{rep_id}/resume", dependencies=[Csrf])
async def resume(request: Request, _: Operator, up: UpstreamDep, rep_id: str) -> Response:
    return await _patch_rep(up, request, rep_id, {"paused": False}, "takes leads again")


@router.post("/routing/reps/{rep_id}/out-of-office", dependencies=[Csrf])
async def out_of_office(
    request: Request,
    _: Operator,
    up: UpstreamDep,
    rep_id: str,
    from_day: Annotated[date, Form(alias="from")],
    to_day: Annotated[date, Form(alias="to")],
) -> Response:
    """Add an absence to the rep's others (the router refuses one that ends before it starts)."""
    reps = await up.get("router", "/v1/routing/reps")
    current = next((r for r in reps["items"] if r["rep_id"] == rep_id), None)
    absences = (current or {}).get("out_of_office", [])
    absences = [*absences, {"from": from_day.isoformat(), "to": to_day.isoformat()}]
    return await _patch_rep(
        up, request, rep_id, {"out_of_office": absences}, f"is out of office {from_day} to {to_day}"
    )


@router.post("/routing/reps/{rep_id}/back", dependencies=[Csrf])
async def back_in_office(request: Request, _: Operator, up: UpstreamDep, rep_id: str) -> Response:
    return await _patch_rep(up, request, rep_id, {"out_of_office": []}, "has no absences")


WHAT_IF = {
    "routing": ("router", "/v1/routing/simulate", "partials/routing_what_if.html"),
    "scoring": ("scoring", "/v1/scoring/simulate", "partials/scoring_what_if.html"),
}


@router.post("/{kind}/what-if", dependencies=[Csrf])
async def what_if(
    request: Request,
    _: Viewer,
    up: UpstreamDep,
    kind: Literal["routing", "scoring"],
    days: Annotated[int, Form(ge=1, le=366)] = 30,
    candidate: Annotated[str, Form()] = "",
    upload: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Replay the window through a candidate routing configuration or scoring model, pasted or
    uploaded; nothing changes, so a viewer may."""
    if upload is not None and upload.filename:
        candidate = (await upload.read(MAX_CANDIDATE + 1)).decode("utf-8", errors="replace")
    if len(candidate) > MAX_CANDIDATE:
        raise Refused("candidate: larger than 2 MB")
    service, path, template = WHAT_IF[kind]
    answer = await up.send(
        service, "POST", path, content=candidate, params={"days": days}, long=True
    )
    return render(request, template, {"sim": answer})


@router.get("/scoring")
async def scoring(request: Request, _: Viewer, up: UpstreamDep) -> Response:
    model = await up.get("scoring", "/v1/scoring/model")
    return render(request, "scoring.html", {"page": "scoring", "model": model})


@router.get("/deliveries")
async def deliveries(request: Request, _: Viewer, up: UpstreamDep) -> Response:
    data = await views.deliveries(up)
    return render(request, "deliveries.html", {"page": "deliveries", "queues": data})


@router.post("/deliveries/{service}/replay", dependencies=[Csrf])
async def replay_all(request: Request, _: Operator, up: UpstreamDep, service: Service) -> Response:
    answer = await up.send(service, "POST", f"{PREFIX[service]}/deliveries/replay")
    flash(request, f"{answer['replayed']} dead deliveries of {service} queued again.")
    return _back("/deliveries")


@router.post("/deliveries/{service}/{delivery_id}/replay", dependencies=[Csrf])
async def replay_one(
    request: Request, _: Operator, up: UpstreamDep, service: Service, delivery_id: str
) -> Response:
    await up.send(service, "POST", f"{PREFIX[service]}/deliveries/{segment(delivery_id)}/replay")
    flash(request, f"Delivery {delivery_id} queued again.")
    return _back("/deliveries")
