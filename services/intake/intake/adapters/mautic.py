"""Mautic webhooks: form submissions, page hits and email opens, signed with ``Webhook-Signature``.

Mautic signs the raw body: base64 of HMAC-SHA256 keyed with the webhook's secret. A payload maps
event types (``mautic.form_on_submit``, ...) to lists of events; one call may carry many.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, TypeVar

from pydantic import ValidationError

from ..schemas import EngagementIn, FormFill
from .inbound import PayloadInvalid, SignatureInvalid, Translation, company_size, text

SOURCE = "mautic"
FORM = "mautic.form_on_submit"
PAGE_HIT = "mautic.page_on_hit"
EMAIL_OPEN = "mautic.email_on_open"


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secret: str, body: bytes, signature: str | None) -> None:
    if not signature:
        raise SignatureInvalid("Webhook-Signature is required")
    if not hmac.compare_digest(sign(secret, body), signature.strip()):
        raise SignatureInvalid("Webhook-Signature does not match the body")


M = TypeVar("M", FormFill, EngagementIn)


def _object(value: Any) -> dict[str, Any]:
    """A JSON object of the payload, or an empty one where it is missing or not an object."""
    return value if isinstance(value, dict) else {}


def _contact_field(contact: Any, name: str) -> Any:
    if not isinstance(contact, dict):
        return None
    groups = contact.get("fields")
    if not isinstance(groups, dict):
        return None
    for group in groups.values():
        if isinstance(group, dict) and isinstance(group.get(name), dict):
            return group[name].get("value")
    return None


def _validated(model: type[M], data: dict[str, Any], path: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PayloadInvalid(
            f"{path}.{'.'.join(str(p) for p in first['loc'])}", first["msg"]
        ) from exc


def _form(item: Any, path: str) -> tuple[FormFill, str] | None:
    sub = item.get("submission") if isinstance(item, dict) else None
    if not isinstance(sub, dict) or sub.get("id") is None:
        raise PayloadInvalid(f"{path}.submission.id", "is required")
    results = _object(sub.get("results"))
    contact = sub.get("lead")
    email = text(results.get("email"), 254) or text(_contact_field(contact, "email"), 254)
    if email is None:
        return None

    def pick(name: str, *alts: str, limit: int = 200) -> str | None:
        for key in (name, *alts):
            value = text(results.get(key), limit) or text(_contact_field(contact, key), limit)
            if value:
                return value
        return None

    known = {
        "email",
        "firstname",
        "first_name",
        "lastname",
        "last_name",
        "company",
        "position",
        "jobtitle",
        "phone",
        "mobile",
        "country",
        "state",
        "zipcode",
        "numemployees",
        "industry",
    }
    form_info = _object(sub.get("form"))
    form = _validated(
        FormFill,
        {
            k: v
            for k, v in {
                "email": email,
                "first_name": pick("firstname", "first_name"),
                "last_name": pick("lastname", "last_name"),
                "company": pick("company"),
                "title": pick("position", "jobtitle"),
                "phone": pick("phone", "mobile", limit=40),
                "country": pick("country", limit=60),
                "region": pick("state", limit=100),
                "postal_code": pick("zipcode", limit=20),
                "company_size": company_size(results.get("numemployees")),
                "industry": pick("industry"),
                "page_url": text(sub.get("referer"), 2000),
                "occurred_at": text(sub.get("dateSubmitted")),
                "source_system": SOURCE,
                "fields": {
                    str(k)[:100]: str(v)[:2000]
                    for k, v in results.items()
                    if k not in known and v not in (None, "") and not isinstance(v, (dict, list))
                }
                | ({"form": str(form_info["alias"])[:2000]} if form_info.get("alias") else {}),
            }.items()
            if v is not None
        },
        path,
    )
    return form, f"{SOURCE}:form_submission:{sub['id']}"


def _subject(item: Any, key: str, path: str) -> tuple[dict[str, Any], str | None]:
    """The event's object (``hit``, ``stat``) and its contact's email (None: anonymous)."""
    obj = item.get(key) if isinstance(item, dict) else None
    if not isinstance(obj, dict) or obj.get("id") is None:
        raise PayloadInvalid(f"{path}.{key}.id", "is required")
    return obj, text(_contact_field(obj.get("lead"), "email"), 254)


def _page_hit(item: Any, path: str) -> EngagementIn | None:
    hit, email = _subject(item, "hit", path)
    if email is None:
        return None
    from_email = hit.get("source") == "email"
    return _validated(
        EngagementIn,
        {
            "email": email,
            "engagement_type": "email_click" if from_email else "page_view",
            "url": text(hit.get("url"), 2000),
            "occurred_at": text(hit.get("dateHit")) or text(item.get("timestamp")),
            "source_system": SOURCE,
            "properties": {
                k: v
                for k, v in {
                    "title": text(hit.get("urlTitle")),
                    "email_id": text(hit.get("sourceId")),
                }.items()
                if v
            },
            "source_event_id": f"{SOURCE}:page_hit:{hit['id']}",
        },
        path,
    )


def _email_open(item: Any, path: str) -> EngagementIn | None:
    stat, email = _subject(item, "stat", path)
    if email is None:
        return None
    mail = _object(stat.get("email"))
    return _validated(
        EngagementIn,
        {
            "email": email,
            "engagement_type": "email_open",
            "occurred_at": text(stat.get("dateRead")) or text(item.get("timestamp")),
            "campaign": text(mail.get("name")),
            "source_system": SOURCE,
            "source_event_id": f"{SOURCE}:email_open:{stat['id']}",
        },
        path,
    )


def translate(payload: Any) -> Translation:
    if not isinstance(payload, dict):
        raise PayloadInvalid("(body)", "expected an object of Mautic event types")
    out = Translation()
    for event_type, items in payload.items():
        if event_type == "timestamp":
            continue
        if not isinstance(items, list):
            raise PayloadInvalid(event_type, "expected a list of events")
        for index, item in enumerate(items):
            path = f"{event_type}.{index}"
            if event_type == FORM:
                form = _form(item, path)
                if form is None:
                    out.ignored.append(f"{path}: submission without an email")
                else:
                    out.forms.append(form)
            elif event_type in (PAGE_HIT, EMAIL_OPEN):
                engagement = (_page_hit if event_type == PAGE_HIT else _email_open)(item, path)
                if engagement is None:
                    out.ignored.append(f"{path}: anonymous visitor (no email)")
                else:
                    out.engagements.append(engagement)
            else:
                out.ignored.append(f"{event_type}: not used by leadrelay")
                break
    return out
