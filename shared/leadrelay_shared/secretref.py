"""Secrets in rules files given by reference, so that a file kept in git holds none:
``secret: {env: CRM_WEBHOOK_SECRET}`` or ``secret: {file: /run/secrets/crm}``. A stored
configuration version keeps the reference; each instance reveals it from its own environment
when it loads the file, and an answer never shows a secret given in clear."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

HIDDEN = "(hidden)"
WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
"""A Standard Webhooks signing secret: ``whsec_`` and base64."""


class FromEnv(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class FromFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str = Field(min_length=1)


Secret = str | FromEnv | FromFile
"""A secret in clear, or where to find it."""


def reveal(value: Secret) -> str:
    """The secret itself; ``ValueError`` naming the variable or file when it is not there."""
    if isinstance(value, str):
        return value
    if isinstance(value, FromEnv):
        found = os.environ.get(value.env, "")
        if not found:
            raise ValueError(f"the environment variable {value.env} is not set")
        return found
    try:
        return Path(value.file).read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {value.file}: {exc.strerror}") from None


def _standard(value: Secret) -> Secret:
    if not WEBHOOK_SECRET.fullmatch(reveal(value)):
        raise ValueError("must be a Standard Webhooks secret: whsec_ and base64")
    return value


def _revealable(value: Secret) -> Secret:
    reveal(value)
    return value


SigningSecret = Annotated[Secret, AfterValidator(_standard)]
"""A webhook's signing secret, in clear or by reference, checked when the file is loaded."""
KnownSecret = Annotated[Secret, AfterValidator(_revealable)]
"""Any other secret, in clear or by reference, found when the file is loaded."""


def hide(section: list[dict[str, Any]], *fields: str) -> list[dict[str, Any]]:
    """The items of a document's section with each of ``fields`` given in clear hidden; a
    reference stays, as it says where the secret is, not what."""
    return [
        {k: HIDDEN if k in fields and isinstance(v, str) else v for k, v in item.items()}
        for item in section
    ]
