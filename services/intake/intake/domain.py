"""Pure intake rules: identity normalisation and turning validated input into events."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from functools import lru_cache
from importlib import resources

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from leadrelay_shared.contracts import (
    ActivityLogged,
    ActivityType,
    FormSubmitted,
    LeadSnapshot,
    lead_id_for,
)

from .errors import InvalidInput

IDEMPOTENCY_NAMESPACE = uuid.UUID("0b7a5f7e-9c0f-4a53-8f1e-7d3f3b7c2a91")


@lru_cache(maxsize=1)
def free_email_domains() -> frozenset[str]:
    text = (resources.files("intake") / "data" / "free_email_domains.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and line[0] != "#")


def normalise_email(raw: str) -> str:
    """Trim, Unicode-normalise (NFKC), validate syntax, lower-case the whole address."""
    cleaned = unicodedata.normalize("NFKC", raw).strip()
    try:
        valid = validate_email(cleaned, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput("email", "email_syntax", str(exc)) from exc
    return valid.normalized.lower()


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
    """A retried request with the same key gets the same event id, so downstream counts it once."""
    if idempotency_key:
        return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{scope}:{idempotency_key}")
    return uuid.uuid4()


def clean_text(value: str | None) -> str | None:
    """Strip control characters and surrounding space; empty becomes None."""
    if value is None:
        return None
    kept = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C" or ch in "\t")
    kept = " ".join(kept.split())
    return kept or None


def snapshot(*, email: str, first_name: str | None = None, last_name: str | None = None,
             company: str | None = None, title: str | None = None, phone: str | None = None,
             country: str | None = None, region: str | None = None,
             company_size: int | None = None, industry: str | None = None) -> LeadSnapshot:
    domain = email.rsplit("@", 1)[1]
    return LeadSnapshot(
        email=email, first_name=clean_text(first_name), last_name=clean_text(last_name),
        company=clean_text(company), title=clean_text(title),
        phone=normalise_phone(phone, country), country=clean_text(country and country.upper()),
        region=clean_text(region), company_size=company_size, industry=clean_text(industry),
        email_domain=domain, is_free_email=domain in free_email_domains(),
    )


def form_submitted(*, lead: LeadSnapshot, event_id: uuid.UUID, occurred_at: datetime,
                   received_at: datetime, source_system: str, fields: dict[str, str],
                   consent: dict[str, bool], utm: dict[str, str], page_url: str | None
                   ) -> FormSubmitted:
    assert lead.email is not None
    return FormSubmitted(
        event_id=event_id, lead_id=lead_id_for(lead.email), occurred_at=occurred_at,
        received_at=received_at, source_system=source_system, lead=lead,
        fields={k: v for k, v in fields.items()}, consent=consent, utm=utm, page_url=page_url,
    )


def activity_logged(*, lead_id: str, event_id: uuid.UUID, occurred_at: datetime,
                    received_at: datetime, activity_type: ActivityType, actor_id: str | None,
                    subject: str | None, source_system: str) -> ActivityLogged:
    return ActivityLogged(
        event_id=event_id, lead_id=lead_id, occurred_at=occurred_at, received_at=received_at,
        activity_type=activity_type, actor_id=clean_text(actor_id), subject=clean_text(subject),
        source_system=source_system,
    )
