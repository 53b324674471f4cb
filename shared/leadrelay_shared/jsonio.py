"""JSON in and out through pydantic-core, which pydantic already brings: its Rust encoder and
parser are faster than the standard library's, and exact on integers of any size (where orjson
would refuse them or turn them into floats).

Used for Kafka record values, the JSON(B) columns of every table (through the engine) and webhook
bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json


def dumps(value: Any, *, fallback: Callable[[Any], Any] | None = None) -> bytes:
    """Compact JSON (no spaces, UTF-8). ``fallback`` converts what JSON cannot hold, like the
    standard library's ``default``."""
    try:
        return to_json(value, fallback=fallback)
    except PydanticSerializationError:
        # e.g. a lone surrogate, which UTF-8 cannot encode: the standard library escapes it
        return json.dumps(value, separators=(",", ":"), default=fallback).encode()


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def loads(data: str | bytes) -> Any:
    """Parse JSON; malformed input raises ``ValueError``, as ``json.loads`` does."""
    return from_json(data)
