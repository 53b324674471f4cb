"""Pure intake rules: identity normalisation and turning validated input into events."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import phonenumbers

from leadrelay_shared import identity
from leadrelay_shared.contracts import (
    ActivityLogged,
    ActivityType,
    Audit,
    FormSubmitted,
    LeadSnapshot,
    lead_id_for,
)
from leadrelay_shared.ids import NameBasedIds

from .errors import InvalidInput

IDEMPOTENCY_NAMESPACE = uuid.UUID("0b7a5f7e-9c0f-4a53-8f1e-7d3f3b7c2a91")
_EVENT_IDS = NameBasedIds(IDEMPOTENCY_NAMESPACE)


@lru_cache(maxsize=1)
def free_email_domains() -> frozenset[str]:
    text = (resources.files("intake") / "data" / "free_email_domains.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and line[0] != "#")


def normalise_email(raw: str) -> str:
    """``identity.normalise_email``, its refusal named as the ``email`` field's."""
    try:
        return identity.normalise_email(raw)
    except identity.EmailNotValidError as exc:
        raise InvalidInput("email", "email_syntax", str(exc)) from exc


def validated_email(raw: str) -> str:
    """``normalise_email`` through email-validator alone, for any address."""
    try:
        return identity.validated_email(raw)
    except identity.EmailNotValidError as exc:
        raise InvalidInput("email", "email_syntax", str(exc)) from exc


def normalise_phone(raw: str | None, country: str | None) -> str | None:
    """E.164 where the number parses (with the country as a hint); otherwise the trimmed input."""
    if not raw or not raw.strip():
        return None
    region = country.upper() if country and len(country) == 2 else None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw.strip()
    if phonenumbers.is_valid_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return raw.strip()


def event_id_for(idempotency_key: str | None, scope: str) -> uuid.UUID:
    """A retried request with the same key gets the same event id, so downstream counts it once.

    ``scope`` names the caller and the kind of request, so two sources that happen to use the
    same key do not collide.
    """
    if idempotency_key:
        return _EVENT_IDS.uuid(f"{scope}:{idempotency_key}")
    return uuid.uuid4()


def event_id_text(idempotency_key: str, scope: str) -> str:
    """``str(event_id_for(idempotency_key, scope))`` for a key given, without building the UUID."""
    return _EVENT_IDS.text(f"{scope}:{idempotency_key}")


def lead_id_from(lead_id: str | None, email: str | None) -> str:
    """The lead an event is about: the given id, or the one derived from the normalised email."""
    if lead_id:
        return lead_id
    return lead_id_for(normalise_email(email or ""))


def hash_ip(ip: str | None, key: bytes) -> str | None:
    """A keyed hash of the client address: equal addresses compare equal, none can be read back."""
    if not ip:
        return None
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]


def audit(
    *,
    key_id: str | None,
    client_ip: str | None,
    user_agent: str | None,
    request_id: str | None,
    ip_hash_key: bytes,
    source_event_id: str | None = None,
) -> Audit:
    return Audit(
        source_key_id=key_id,
        client_ip_hash=hash_ip(client_ip, ip_hash_key),
        user_agent=clean_text(user_agent[:300]) if user_agent else None,
        request_id=request_id,
        source_event_id=source_event_id,
    )


FORM_ALIASES = {
    "firstname": "first_name",
    "first-name": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "last-name": "last_name",
    "family_name": "last_name",
    "jobtitle": "title",
    "job_title": "title",
    "company_name": "company",
    "employees": "company_size",
    "numemployees": "company_size",
    "state": "region",
    "zip": "postal_code",
    "zipcode": "postal_code",
    "postcode": "postal_code",
    "mobile": "phone",
    "phone_number": "phone",
}
FORM_SCALARS = frozenset(
    {
        "email",
        "first_name",
        "last_name",
        "company",
        "title",
        "phone",
        "country",
        "region",
        "postal_code",
        "company_size",
        "industry",
        "page_url",
        "source_system",
        "occurred_at",
    }
)
TRUTHY = frozenset({"on", "true", "1", "yes", "y", "checked"})


def form_from_fields(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, Any], str | None]:
    """Map a flat HTML form (urlencoded or multipart) onto the fields of ``FormFill``.

    Known names (and common aliases) fill the profile; ``utm_*`` go to ``utm``; ``consent_<name>``
    or ``consent[<name>]`` to ``consent``; ``_redirect`` is the thank-you page; names starting
    with ``_`` are otherwise ignored; everything else is kept in ``fields`` (repeated names, such
    as checkboxes, are joined with a comma).
    """
    out: dict[str, Any] = {}
    fields: dict[str, str] = {}
    utm: dict[str, str] = {}
    consent: dict[str, bool] = {}
    redirect: str | None = None
    for raw_name, value in pairs:
        name = raw_name.strip()
        lowered = name.lower()
        if lowered == "_redirect":
            redirect = value.strip() or None
        elif lowered.startswith("_"):
            continue
        elif lowered.startswith("utm_"):
            utm[lowered] = value
        elif lowered.startswith("consent_") or (
            lowered.startswith("consent[") and lowered.endswith("]")
        ):
            consent[lowered[8:].rstrip("]")] = value.strip().lower() in TRUTHY
        elif FORM_ALIASES.get(lowered, lowered) in FORM_SCALARS:
            key = FORM_ALIASES.get(lowered, lowered)
            if value.strip():
                out[key] = value
        else:
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
    if fields:
        out["fields"] = fields
    if utm:
        out["utm"] = utm
    if consent:
        out["consent"] = consent
    return out, redirect


def clean_text(value: str | None) -> str | None:
    """Strip control characters and surrounding space; empty becomes None."""
    if value is None:
        return None
    if value.isascii() and value.isprintable():  # no control character to look for
        return " ".join(value.split()) or None
    kept = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C" or ch in "\t")
    kept = " ".join(kept.split())
    return kept or None


def snapshot(
    *,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    company: str | None = None,
    title: str | None = None,
    phone: str | None = None,
    country: str | None = None,
    region: str | None = None,
    postal_code: str | None = None,
    company_size: int | None = None,
    industry: str | None = None,
) -> LeadSnapshot:
    domain = email.rsplit("@", 1)[1]
    return LeadSnapshot(
        email=email,
        first_name=clean_text(first_name),
        last_name=clean_text(last_name),
        company=clean_text(company),
        title=clean_text(title),
        phone=normalise_phone(phone, country),
        country=clean_text(country and country.upper()),
        region=clean_text(region),
        postal_code=clean_text(postal_code and postal_code.upper()),
        company_size=company_size,
        industry=clean_text(industry),
        email_domain=domain,
        is_free_email=domain in free_email_domains(),
    )


def form_submitted(
    *,
    lead: LeadSnapshot,
    event_id: uuid.UUID,
    occurred_at: datetime,
    received_at: datetime,
    source_system: str,
    fields: dict[str, str],
    consent: dict[str, bool],
    utm: dict[str, str],
    page_url: str | None,
    audit: Audit | None = None,
) -> FormSubmitted:
    assert lead.email is not None
    return FormSubmitted(
        event_id=event_id,
        lead_id=lead_id_for(lead.email),
        occurred_at=occurred_at,
        received_at=received_at,
        source_system=source_system,
        lead=lead,
        fields={k: v for k, v in fields.items()},
        consent=consent,
        utm=utm,
        page_url=page_url,
        audit=audit,
    )


def activity_logged(
    *,
    lead_id: str,
    event_id: uuid.UUID,
    occurred_at: datetime,
    received_at: datetime,
    activity_type: ActivityType,
    actor_id: str | None,
    subject: str | None,
    source_system: str,
    audit: Audit | None = None,
) -> ActivityLogged:
    return ActivityLogged(
        event_id=event_id,
        lead_id=lead_id,
        occurred_at=occurred_at,
        received_at=received_at,
        activity_type=activity_type,
        actor_id=clean_text(actor_id),
        subject=clean_text(subject),
        source_system=source_system,
        audit=audit,
    )
