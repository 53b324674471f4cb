"""What a marketing tool's webhook turns into, before intake publishes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import PayloadInvalid, SignatureInvalid
from ..schemas import EngagementIn, FormFill

__all__ = ["PayloadInvalid", "SignatureInvalid", "Translation", "company_size", "text"]


@dataclass(frozen=True)
class Translation:
    """Forms and engagement events found in one webhook call, plus what was ignored and why."""

    forms: list[tuple[FormFill, str]] = field(default_factory=list)  # (form, source event id)
    engagements: list[EngagementIn] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def company_size(raw: Any) -> int | None:
    """'250', 250 or a range such as '201-500' or '1000+' (the lower bound is kept)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if raw > 0 else None
    match = re.search(r"\d[\d,]*", str(raw or ""))
    if match is None:
        return None
    value = int(match.group(0).replace(",", ""))
    return value if 0 < value <= 10_000_000 else None


def text(raw: Any, limit: int = 200) -> str | None:
    if raw is None or isinstance(raw, (dict, list)):
        return None
    value = str(raw).strip()
    return value[:limit] or None
