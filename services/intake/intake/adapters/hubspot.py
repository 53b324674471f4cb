"""HubSpot: the contact a workflow's "Send a webhook" action posts, signed with v3 signatures.

HubSpot signs with ``X-HubSpot-Signature-v3``: base64 of HMAC-SHA256, keyed with the app's client
secret, over method + URI + body + ``X-HubSpot-Request-Timestamp`` (milliseconds); requests older
than five minutes are refused. The payload is the contact in its legacy JSON form: ``properties``
of ``{"value": ...}`` objects and a ``form-submissions`` list; each new form submission (by its
``conversion-id``) becomes one ``FormSubmitted``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from ..schemas import FormFill
from .inbound import PayloadInvalid, SignatureInvalid, Translation, company_size, text

SOURCE = "hubspot"


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str) -> str:
    message = method.encode() + unquote(uri).encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_v3(
    secret: str,
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp_ms: str | None,
    now: datetime,
    max_age_s: int,
) -> None:
    if not signature or not timestamp_ms or not timestamp_ms.isdigit():
        raise SignatureInvalid(
            "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required"
        )
    age_s = now.timestamp() - int(timestamp_ms) / 1000
    if abs(age_s) > max_age_s:
        raise SignatureInvalid(
            f"X-HubSpot-Request-Timestamp is {int(age_s)} s old (at most {max_age_s} s allowed)"
        )
    expected = sign_v3(secret, method, uri, body, timestamp_ms)
    if not hmac.compare_digest(expected, signature.strip()):
        raise SignatureInvalid("X-HubSpot-Signature-v3 does not match the request")


def _prop(properties: dict[str, Any], name: str) -> Any:
    value = properties.get(name)
    return value.get("value") if isinstance(value, dict) else value


def translate(payload: Any) -> Translation:
    if not isinstance(payload, dict):
        raise PayloadInvalid("(body)", "expected a HubSpot contact object")
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        raise PayloadInvalid("properties", "expected an object of contact properties")
    email = text(_prop(properties, "email"), 254)
    if email is None:
        raise PayloadInvalid("properties.email", "the contact has no email")
    submissions = payload.get("form-submissions") or []
    if not isinstance(submissions, list):
        raise PayloadInvalid("form-submissions", "expected a list")
    out = Translation()
    if not submissions:
        out.ignored.append("contact without form submission")
    profile = {
        "email": email,
        "first_name": text(_prop(properties, "firstname")),
        "last_name": text(_prop(properties, "lastname")),
        "company": text(_prop(properties, "company")),
        "title": text(_prop(properties, "jobtitle")),
        "phone": text(_prop(properties, "phone"), 40),
        "country": text(_prop(properties, "country"), 60),
        "region": text(_prop(properties, "state"), 100),
        "postal_code": text(_prop(properties, "zip"), 20),
        "company_size": company_size(_prop(properties, "numemployees")),
        "industry": text(_prop(properties, "industry")),
    }
    for index, sub in enumerate(submissions):
        if not isinstance(sub, dict) or not sub.get("conversion-id"):
            raise PayloadInvalid(f"form-submissions.{index}.conversion-id", "is required")
        occurred = sub.get("timestamp")
        utm = {
            k: str(v)[:2000]
            for k in ("utm_source", "utm_medium", "utm_campaign")
            if (v := _prop(properties, k))
        }
        try:
            form = FormFill.model_validate(
                {
                    **{k: v for k, v in profile.items() if v is not None},
                    "page_url": text(sub.get("page-url"), 2000),
                    "occurred_at": datetime.fromtimestamp(int(occurred) / 1000, UTC)
                    if isinstance(occurred, (int, float))
                    else None,
                    "source_system": SOURCE,
                    "fields": {
                        k: v
                        for k, v in {
                            "form_id": text(sub.get("form-id")),
                            "form_title": text(sub.get("title")),
                            "hubspot_contact_id": text(payload.get("vid")),
                            "portal_id": text(sub.get("portal-id") or payload.get("portal-id")),
                        }.items()
                        if v
                    },
                    "utm": utm,
                }
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise PayloadInvalid(".".join(str(p) for p in first["loc"]), first["msg"]) from exc
        out.forms.append((form, f"{SOURCE}:{sub['conversion-id']}"))
    return out
