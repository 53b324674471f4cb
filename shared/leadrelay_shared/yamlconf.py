"""Configuration files in YAML, validated by pydantic, with errors that name the line and field.

Scoring models, routing configuration and SLA policies are all edited by people; an error that
says ``line 12: teams[1].reps: ...`` is one they can fix without reading a stack trace.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader on libyaml when the wheel has it (it does on the usual platforms), several
times faster than pure Python on a large routing file; the node tree with its line marks is only
composed for an error message."""


class ConfigFileError(ValueError):
    """A file that cannot be used; ``problems`` name the line and the field of each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def validate(
    model: type[M],
    text: str,
    source: str,
    *,
    what: str,
    error: type[ConfigFileError] = ConfigFileError,
    aliases: Mapping[str, str] | None = None,
) -> M:
    """Parse ``text`` as YAML and validate it as ``model``; ``error`` lists every problem."""
    try:
        data = yaml.load(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        why = getattr(exc, "problem", exc)
        raise error(source, [f"{line}not valid YAML ({why})"]) from exc
    if not isinstance(data, dict):
        raise error(source, [f"line 1: the {what} must be a mapping"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        node = yaml.compose(text, Loader=LOADER)  # the lines, only when something is wrong
        raise error(source, [describe(err, node, aliases or {}) for err in exc.errors()]) from exc


def describe(
    err: Mapping[str, Any], root: yaml.Node | None, aliases: Mapping[str, str] | None = None
) -> str:
    """``line N: path.to[2].field: message`` for one pydantic error."""
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    line = line_of(root, loc, aliases or {})
    where = f"line {line}: " if line else ""
    return f"{where}{path or 'file'}: {err['msg']}"


def line_of(node: yaml.Node | None, loc: list[Any], aliases: Mapping[str, str]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to the deepest known line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            key = aliases.get(part, part)
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def zone_name(value: str | None) -> str | None:
    """A pydantic validator body: an IANA time zone name, or a clear error."""
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def checksum(spec: BaseModel) -> str:
    """A digest of a validated document's canonical JSON: the same rules give the same digest."""
    doc = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def print_problems(exc: ConfigFileError) -> None:
    """What the ``check`` commands print for a file that cannot be used."""
    print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
