"""A seeded generator of realistic leads for the end-to-end benchmark.

Each lead is a short story: a few marketing events (page views, email clicks, webinars, a
pricing-page visit) and, for most, a form fill. The mix is what a B2B inbound funnel sees:

* ``fit`` (55 %): a business domain, a senior title, 50 to 5,000 employees, a target industry
  and a core market; their form fill makes them an MQL at once (the hand-raise fast lane of the
  shipped scoring model), so router assigns them and a webhook follows;
* ``mid`` (15 %): a business domain with a junior title and a small company: fit grade C, an
  inquiry that stays with marketing;
* ``free`` (20 %): free-mail addresses, students and job seekers: never routed;
* ``browse`` (10 %): engagement only, no form yet.

The same seed gives the same leads, so runs compare like with like.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FIRST = [
    "Ada",
    "Grace",
    "Linus",
    "Katherine",
    "Alan",
    "Barbara",
    "Edsger",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Tim",
    "Hedy",
    "Donald",
    "Sophie",
    "Jean",
    "Annie",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Johnson",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Knuth",
    "Wilson",
]
STEMS = [
    "north",
    "contoso",
    "ini",
    "glo",
    "umbra",
    "acme",
    "hooli",
    "vandel",
    "stark",
    "wayne",
    "tyrell",
    "cyber",
    "soylent",
    "wonka",
    "oscorp",
    "aperture",
    "massive",
    "blue",
    "red",
]
SUFFIXES = ["wind", "tech", "bex", "ella", "corp", "labs", "soft", "data", "io", "systems"]
LEGAL = ["Inc.", "Ltd", "GmbH", "SA", "BV", "LLC", ""]
FREE_MAIL = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "gmx.de", "orange.fr"]
SENIOR = [
    "VP Engineering",
    "Head of Sales Operations",
    "Director of IT",
    "CTO",
    "Chief Revenue Officer",
    "VP Marketing",
    "Founder",
    "Director, Revenue Operations",
]
JUNIOR = ["Marketing Coordinator", "Sales Associate", "Analyst", "Assistant", "Specialist"]
NOT_BUYERS = ["Student", "Intern", "Teacher", "Trainee", None]
CORE = ["US", "CA", "GB", "IE", "DE", "FR", "NL", "SE", "DK", "AU"]
OTHER = ["BR", "IN", "JP", "ES", "IT", "PL", "MX", "ZA", "SG"]
INDUSTRIES = ["Software", "SaaS", "Internet", "IT Services", "Fintech", "Financial Services"]
OTHER_INDUSTRIES = ["Retail", "Manufacturing", "Education", "Health", "Logistics"]
US_STATES = ["CA", "NY", "TX", "WA", "MA", "IL", "FL", "CO"]
PAGES = [
    "/",
    "/product",
    "/pricing",
    "/customers",
    "/blog/lead-routing",
    "/docs",
    "/careers",
    "/integrations/salesforce",
    "/compare/leandata",
]
CAMPAIGNS = ["q4-demo", "nov-newsletter", "webinar-routing", "g2-ads", None]


@dataclass
class Lead:
    n: int
    kind: str
    email: str
    form: dict[str, Any] | None
    engagement: list[dict[str, Any]] = field(default_factory=list)

    @property
    def routed(self) -> bool:
        """Whether the shipped scoring model makes this lead an MQL (so a webhook follows)."""
        return self.kind == "fit"


def _company(rng: random.Random) -> tuple[str, str]:
    stem, suffix = rng.choice(STEMS), rng.choice(SUFFIXES)
    name = f"{stem.capitalize()}{suffix} {rng.choice(LEGAL)}".strip()
    return name, f"{stem}{suffix}.example"


def _engagement(rng: random.Random, email: str, n: int, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        kind = rng.choices(
            [
                "page_view",
                "email_click",
                "email_open",
                "content_download",
                "webinar_registered",
                "webinar_attended",
                "ad_click",
            ],
            weights=[50, 12, 15, 8, 6, 5, 4],
        )[0]
        item: dict[str, Any] = {
            "email": email,
            "engagement_type": kind,
            "campaign": rng.choice(CAMPAIGNS),
            "source_event_id": f"e2e-{n}-{i}",
        }
        if kind == "page_view":
            item["url"] = f"https://leadrelay.example{rng.choice(PAGES)}"
            item["properties"] = {"seconds_on_page": rng.randint(3, 400)}
        out.append(item)
    return out


def make_lead(rng: random.Random, n: int, run_tag: str) -> Lead:
    kind = rng.choices(["fit", "mid", "free", "browse"], weights=[55, 15, 20, 10])[0]
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company, domain = _company(rng)
    local = f"{first}.{last}.{run_tag}{n}".lower()
    if kind == "fit":
        country = rng.choice(CORE)
        email = f"{local}@{domain}"
        form = {
            "email": email,
            "first_name": first,
            "last_name": last,
            "company": company,
            "title": rng.choice(SENIOR),
            "country": country,
            "company_size": rng.choice([60, 120, 250, 800, 1500, 4000]),
            "industry": rng.choice(INDUSTRIES),
            "page_url": "https://leadrelay.example/demo",
            "utm": {
                "utm_source": rng.choice(["google", "linkedin", "g2"]),
                "utm_campaign": "q4-demo",
            },
            "consent": {"marketing": True},
        }
        if country == "US":
            form["region"] = rng.choice(US_STATES)
            form["postal_code"] = f"{rng.randint(1000, 99999):05d}"
    elif kind == "mid":
        email = f"{local}@{domain}"
        form = {
            "email": email,
            "first_name": first,
            "company": company,
            "title": rng.choice(JUNIOR),
            "country": rng.choice(CORE + OTHER),
            "company_size": rng.choice([3, 5, 8]),
            "industry": rng.choice(OTHER_INDUSTRIES),
        }
    elif kind == "free":
        email = f"{local}@{rng.choice(FREE_MAIL)}"
        form = {
            "email": email,
            "first_name": first,
            "country": rng.choice(OTHER),
            "title": rng.choice(NOT_BUYERS),
        }
        form = {k: v for k, v in form.items() if v is not None}
    else:
        email = f"{local}@{rng.choice([domain, rng.choice(FREE_MAIL)])}"
        form = None
    engagement = _engagement(rng, email, n, rng.choice([0, 1, 1, 2, 3, 4] if form else [1, 2, 3]))
    return Lead(n, kind, email, form, engagement)


def leads(seed: int, count: int, run_tag: str = "") -> list[Lead]:
    rng = random.Random(seed)
    return [make_lead(rng, n, run_tag) for n in range(count)]
