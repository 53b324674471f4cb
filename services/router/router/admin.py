"""Changes to a routing configuration as pure functions of its document: what the admin API and
the CLI apply. Each returns a new document; validation happens when it is compiled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .config import accounts_from_csv
from .errors import ConfigError, NotFound

KEYED = ("segments", "reps", "teams", "territories", "accounts", "webhooks")
REP_FIELDS = frozenset(
    {
        "paused",
        "active",
        "out_of_office",
        "capacity",
        "working_hours",
        "timezone",
        "sdr",
        "manager",
        "name",
        "email",
    }
)
SECRET_FIELDS = frozenset({"secret"})


def patch_rep(doc: Mapping[str, Any], rep_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Pause, deactivate, set out-of-office dates or capacity of one rep."""
    unknown = sorted(set(changes) - REP_FIELDS)
    if unknown:
        raise ConfigError(
            "request",
            [
                f"{k}: not a field an operator may change on a rep (allowed: {sorted(REP_FIELDS)})"
                for k in unknown
            ],
        )
    reps = [dict(r) for r in doc.get("reps", [])]
    for rep in reps:
        if rep["id"] == rep_id:
            rep.update(changes)
            return {**doc, "reps": reps}
    raise NotFound(f"rep_id: no rep {rep_id} in the active configuration")


def import_accounts(
    doc: Mapping[str, Any], csv_text: str, mode: Literal["merge", "replace"] = "merge"
) -> tuple[dict[str, Any], int]:
    """Accounts from CSV: ``merge`` adds or replaces by id, ``replace`` drops the others."""
    rows = [a.model_dump(exclude_none=True) for a in accounts_from_csv(csv_text, "accounts.csv")]
    current = {} if mode == "replace" else {a["id"]: a for a in doc.get("accounts", [])}
    current.update({a["id"]: a for a in rows})
    return {**doc, "accounts": list(current.values())}, len(rows)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What changed between two documents: per keyed collection, ids added, removed and changed
    (field by field); other settings by name. Secrets are never shown, only that they changed."""
    out: dict[str, Any] = {}
    for key in KEYED:
        before = {i["id"]: i for i in old.get(key, [])}
        after = {i["id"]: i for i in new.get(key, [])}
        changed = {
            i: _fields(before[i], after[i])
            for i in sorted(before.keys() & after.keys())
            if before[i] != after[i]
        }
        section = {
            "added": sorted(after.keys() - before.keys()),
            "removed": sorted(before.keys() - after.keys()),
            "changed": changed,
        }
        if any(section.values()):
            out[key] = section
    settings = {
        k: _show(k, old.get(k), new.get(k))
        for k in sorted((old.keys() | new.keys()) - set(KEYED))
        if old.get(k) != new.get(k)
    }
    if settings:
        out["settings"] = settings
    return out


def _fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _show(k, before.get(k), after.get(k))
        for k in sorted(before.keys() | after.keys())
        if before.get(k) != after.get(k)
    }


def _show(key: str, old: Any, new: Any) -> Any:
    return "(changed)" if key in SECRET_FIELDS else {"from": old, "to": new}


def render(changes: Mapping[str, Any]) -> str:
    """The diff as lines for a terminal."""
    if not changes:
        return "no changes"
    lines = []
    for key, section in changes.items():
        if key == "settings":
            lines += [f"~ {name}: {_text(v)}" for name, v in section.items()]
            continue
        lines += [f"+ {key}/{i}" for i in section["added"]]
        lines += [f"- {key}/{i}" for i in section["removed"]]
        for i, fields in section["changed"].items():
            lines += [f"~ {key}/{i}.{name}: {_text(v)}" for name, v in fields.items()]
    return "\n".join(lines)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else f"{value['from']!r} -> {value['to']!r}"
