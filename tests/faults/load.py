"""Steady load that behaves as a careful client: each form fill is posted until intake accepts
it, a ``503`` or no answer retried with the same ``Idempotency-Key`` (so a retry is the same
event), on the other intake instance when one does not answer; and the ledger that says, from
what was accepted and what arrived, whether anything was lost or done twice."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from devstack.receiver import Received

GIVE_UP_S = 120.0


@dataclass
class Lead:
    email: str
    key: str
    first_at: float
    accepted_at: float | None = None
    lead_id: str | None = None


@dataclass
class Load:
    urls: list[str]
    api_key: str
    rate: float
    leads: list[Lead] = field(default_factory=list)
    answers: list[tuple[float, int]] = field(default_factory=list)
    """Every attempt in the order answered: (instant, status; 0 for no answer)."""
    _turn: Iterator[int] = field(default_factory=itertools.count)

    async def run(self, stop: asyncio.Event) -> None:
        """Start a lead every ``1 / rate`` seconds until ``stop``; then wait for every lead
        started to be accepted (or given up on)."""
        async with httpx.AsyncClient(
            timeout=5.0, headers={"Authorization": f"Bearer {self.api_key}"}
        ) as client:
            tasks = []
            started = time.monotonic()
            for n in itertools.count():
                if stop.is_set():
                    break
                lead = Lead(
                    f"faults-{uuid.uuid4().hex[:10]}@contoso.example",
                    str(uuid.uuid4()),
                    time.time(),
                )
                self.leads.append(lead)
                tasks.append(asyncio.create_task(self._post(client, lead)))
                delay = started + (n + 1) / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.gather(*tasks)

    async def _post(self, client: httpx.AsyncClient, lead: Lead) -> None:
        form = {
            "email": lead.email,
            "first_name": "Grace",
            "company": "Contoso",
            "title": "VP Sales",
        }
        deadline = time.monotonic() + GIVE_UP_S
        while time.monotonic() < deadline:
            url = self.urls[next(self._turn) % len(self.urls)]
            try:
                resp = await client.post(
                    f"{url}/v1/forms", json=form, headers={"Idempotency-Key": lead.key}
                )
                status = resp.status_code
            except httpx.HTTPError:
                status = 0
            self.answers.append((time.time(), status))
            if status == 202:
                lead.accepted_at = time.time()
                lead.lead_id = str(resp.json()["lead_id"])
                return
            await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Row:
    """What one fault did, as the tier prints it."""

    fault: str
    posted: int  # leads whose first post fell in the window
    accepted: int
    delivered: int
    lost: int
    doubled: int
    alerts: int
    alerts_lost: int
    alerts_doubled: int
    spread: int
    refused_run: int
    refused_run_s: float
    recovered_s: float | None

    HEADER = (
        "| fault | posted | accepted | delivered | lost | twice | alerts | alerts lost "
        "| alerts twice | round-robin spread | longest 503 run | time to recover |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )

    def line(self) -> str:
        recovered = (
            "not within the window" if self.recovered_s is None else f"{self.recovered_s:.1f} s"
        )
        return (
            f"| {self.fault} | {self.posted} | {self.accepted} | {self.delivered} | {self.lost} "
            f"| {self.doubled} "
            f"| {self.alerts} | {self.alerts_lost} | {self.alerts_doubled} | {self.spread} "
            f"| {self.refused_run} ({self.refused_run_s:.1f} s) | {recovered} |"
        )


def by_lead(received: list[Received], hook: str) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = {}
    for r in received:
        if r.hook == hook:
            out.setdefault(str(r.payload["data"]["lead_id"]), []).append(r)
    return out


def longest_refusal(answers: list[tuple[float, int]]) -> tuple[int, float]:
    """The longest run of consecutive ``503`` answers: how many, and how long it lasted."""
    best, best_s, run, began = 0, 0.0, 0, 0.0
    for at, status in sorted(answers):
        if status == 503:
            if run == 0:
                began = at
            run += 1
            if run > best:
                best, best_s = run, at - began
        else:
            run = 0
    return best, best_s


def recovered_after(
    leads: list[Lead], routed: dict[str, list[Received]], fault_at: float
) -> float | None:
    """Seconds from the fault until every later lead was accepted at once and routed within
    two seconds; None if the window ended before that."""
    healthy_since = None
    for lead in sorted(leads, key=lambda x: x.first_at):
        arrived = routed.get(lead.lead_id or "", [])
        ok = (
            lead.accepted_at is not None
            and lead.accepted_at - lead.first_at < 1.0
            and bool(arrived)
            and min(r.at for r in arrived) - lead.accepted_at < 2.0
        )
        if not ok:
            healthy_since = None
        elif healthy_since is None:
            healthy_since = lead.first_at
    if healthy_since is None:
        return None
    return max(0.0, healthy_since - fault_at)


def ledger(
    fault: str,
    load: Load,
    since: float,
    received: list[Received],
    fault_at: float,
    reps: tuple[str, ...],
) -> Row:
    """The figures of the leads first posted since ``since``; round robin over every lead
    routed so far, among ``reps``."""
    leads = [lead for lead in load.leads if lead.first_at >= since]
    accepted = [lead for lead in leads if lead.lead_id is not None]
    routed = by_lead(received, "crm")
    alerts = by_lead(received, "ops")
    delivered = [lead for lead in accepted if lead.lead_id in routed]
    doubled = [
        lead
        for lead in delivered
        if len({r.webhook_id for r in routed[lead.lead_id or ""]}) > 1
        or len({r.payload["data"]["assignment_id"] for r in routed[lead.lead_id or ""]}) > 1
    ]
    breaches = {
        lead.key: [
            r for r in alerts.get(lead.lead_id or "", []) if r.payload["type"] == "sla.breached"
        ]
        for lead in delivered
    }
    owners = Counter(str(rs[0].payload["data"]["owner"]["id"]) for rs in routed.values() if rs)
    counts = [owners.get(rep, 0) for rep in reps]
    answers = [a for a in load.answers if a[0] >= since]
    run, run_s = longest_refusal(answers)
    return Row(
        fault=fault,
        posted=len(leads),
        accepted=len(accepted),
        delivered=len(delivered),
        lost=len(accepted) - len(delivered),
        doubled=len(doubled),
        alerts=sum(1 for b in breaches.values() if b),
        alerts_lost=sum(1 for b in breaches.values() if not b),
        alerts_doubled=sum(1 for b in breaches.values() if len({r.webhook_id for r in b}) > 1),
        spread=max(counts) - min(counts),
        refused_run=run,
        refused_run_s=run_s,
        recovered_s=recovered_after(leads, routed, fault_at),
    )
