"""What counts as personal data on a lead, and how a stored copy is scrubbed after an erasure.

Every service that keeps a copy of a lead (scoring's profile, router's webhook payloads, the
outboxes) scrubs it with the same function when it sees ``LeadErased``, so the list lives here.
Firmographic fields (company, size, industry, country) describe the employer, not the person,
and stay, so reports on the funnel keep their shape.
"""

from __future__ import annotations

from typing import Any

PERSONAL_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "title",
    "fields",
    "page_url",
    "url",
    "user_agent",
    "client_ip_hash",
    "note",
    "subject",
)
ERASED = "[erased]"


def scrub(value: Any) -> Any:
    """A copy of ``value`` with every personal field (at any depth) replaced by a marker."""
    if isinstance(value, dict):
        return {k: (_erased(v) if k in PERSONAL_FIELDS else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _erased(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {}
    return ERASED
