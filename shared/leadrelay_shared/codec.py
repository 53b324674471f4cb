"""CloudEvents binary mode over Kafka: attributes in ``ce_*`` headers, the event JSON as value."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from .contracts import EVENT_TYPES, Event

_FORMAT = JSONFormat()
CONTENT_TYPE = "application/json"


class PoisonMessage(Exception):
    """A record that can never be turned into an event; it goes to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def encode(event: Event) -> KafkaRecord:
    """Encode an event as a CloudEvent in binary content mode, keyed by lead id."""
    ce = CloudEvent(
        attributes={
            "id": str(event.event_id),
            "source": event.source,
            "type": event.event_type,
            "time": event.occurred_at,
            "subject": event.lead_id,
            "datacontenttype": CONTENT_TYPE,
            "partitionkey": event.lead_id,
            "schemaversion": str(event.schema_version),
        },
        data=event.model_dump(mode="json"),
    )
    message = ce_kafka.to_binary(ce, _FORMAT)
    key = message.key.encode() if isinstance(message.key, str) else (message.key or b"")
    return KafkaRecord(
        topic=event.topic, key=key, value=message.value, headers=list(message.headers.items())
    )


def decode(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], value: bytes | None,
           key: bytes | None = None) -> Event:
    """Decode a binary-mode CloudEvent into its contract; anything wrong is a PoisonMessage."""
    if value is None:
        raise PoisonMessage("empty record value")
    header_map = dict(headers)
    raw_type = header_map.get("ce_type")
    if raw_type is None:
        raise PoisonMessage("missing ce_type header: not a CloudEvent in binary mode")
    try:
        ce = ce_kafka.from_binary(ce_kafka.KafkaMessage(header_map, key, value), _FORMAT)
    except Exception as exc:  # the library raises several unrelated types on bad input
        raise PoisonMessage(f"invalid CloudEvent: {type(exc).__name__}: {exc}") from exc
    event_cls = EVENT_TYPES.get(ce.get_type())
    if event_cls is None:
        raise PoisonMessage(f"unknown event type {ce.get_type()!r}")
    data = ce.get_data()
    if not isinstance(data, dict):
        raise PoisonMessage("event data is not a JSON object")
    try:
        event = event_cls.model_validate(data)
    except ValidationError as exc:
        raise PoisonMessage(f"schema violation for {ce.get_type()}: {_first_error(exc)}") from exc
    if str(event.event_id) != ce.get_id():
        raise PoisonMessage("ce_id does not match the event_id in the data")
    return event


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']} ({exc.error_count()} error(s))"
