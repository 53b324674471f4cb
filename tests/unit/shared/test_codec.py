import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay_shared import jsonio
from leadrelay_shared.codec import (
    CONTENT_TYPE,
    KafkaRecord,
    PoisonMessage,
    decode,
    encode,
    traced,
)
from leadrelay_shared.contracts import Event, Topics
from tests.factories import engagement, feedback, form, lead_of

Headers = list[tuple[str, bytes]]
Mutation = Callable[[Headers, bytes | None], tuple[Headers, bytes | None]]


def library_encode(event: Event, **extensions: str) -> KafkaRecord:
    """The reference encoding, through the ``cloudevents`` library's Kafka binding."""
    ce = CloudEvent(
        attributes=extensions
        | {
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
    message = ce_kafka.to_binary(ce, JSONFormat())
    key = message.key.encode() if isinstance(message.key, str) else (message.key or b"")
    return KafkaRecord(
        topic=event.topic, key=key, value=message.value, headers=list(message.headers.items())
    )


def test_round_trip_in_binary_mode_keyed_by_lead() -> None:
    event = form()
    record = encode(event)
    headers = dict(record.headers)
    assert record.topic == Topics.INTAKE
    assert record.key == event.lead_id.encode()
    assert headers["ce_id"] == str(event.event_id).encode()
    assert headers["ce_type"] == b"io.leadrelay.form.submitted"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert decode(record.headers, record.value, record.key) == event


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_type"], v), "missing ce_type"),
        (
            lambda h, v: ([(k, b"io.unknown" if k == "ce_type" else x) for k, x in h], v),
            "unknown event type",
        ),
        (lambda h, v: (h, b"{not json"), "not a JSON object"),
        (lambda h, v: (h, json.dumps({"lead_id": "x"}).encode()), "schema violation"),
        (lambda h, v: (h, None), "empty record"),
    ],
)
def test_poison_messages_are_named(mutate: Mutation, reason: str) -> None:
    record = encode(form())
    headers, value = mutate(record.headers, record.value)
    with pytest.raises(PoisonMessage, match=reason):
        decode(headers, value, record.key)


def test_id_mismatch_between_header_and_data_is_poison() -> None:
    record = encode(form())
    other = encode(form())
    with pytest.raises(PoisonMessage, match="ce_id"):
        decode(record.headers, other.value, record.key)


ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    ZONES,
    st.sampled_from(["form", "engagement", "feedback"]),
)
def test_fast_encoding_has_the_librarys_headers_and_data(
    moment: datetime, zone: timezone, kind: str
) -> None:
    at = moment.replace(tzinfo=zone)
    lead = lead_of("codec@northwind.example")
    makers: dict[str, Callable[[], Event]] = {
        "form": lambda: form(at=at),
        "engagement": lambda: engagement(lead, at=at),
        "feedback": lambda: feedback(lead, "accepted", at=at),
    }
    event = makers[kind]()
    ours, reference = encode(event), library_encode(event)
    # same topic, key and headers byte for byte; the same JSON data (ours is compact)
    assert (ours.topic, ours.key, ours.headers) == (
        reference.topic,
        reference.key,
        reference.headers,
    )
    assert json.loads(ours.value) == json.loads(reference.value)
    # and the library reads what we write
    ce = ce_kafka.from_binary(
        ce_kafka.KafkaMessage(dict(ours.headers), ours.key, ours.value), JSONFormat()
    )
    assert ce.get_id() == str(event.event_id) and ce.get_type() == event.event_type
    assert decode(ours.headers, ours.value, ours.key) == event


def test_the_trace_travels_as_the_distributed_tracing_extension() -> None:
    event = form(at=datetime(2026, 3, 2, 9, tzinfo=UTC))
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    ours = traced(encode(event), traceparent)
    reference = library_encode(event, traceparent=traceparent)
    assert dict(ours.headers) == dict(reference.headers)
    assert dict(ours.headers)["ce_traceparent"] == traceparent.encode()
    ce = ce_kafka.from_binary(
        ce_kafka.KafkaMessage(dict(ours.headers), ours.key, ours.value), JSONFormat()
    )
    assert ce.get_extension("traceparent") == traceparent
    assert decode(ours.headers, ours.value, ours.key) == event
    assert traced(encode(event), None) == encode(event)


@pytest.mark.parametrize(
    "header, value, reason",
    [
        ("ce_specversion", b"0.3", "unsupported specversion"),
        ("ce_id", b"", "missing ce_id"),
        ("content-type", b"application/xml", "unsupported content-type"),
    ],
)
def test_bad_cloudevent_attributes_are_poison(header: str, value: bytes, reason: str) -> None:
    record = encode(form())
    headers = [(k, value if k == header else v) for k, v in record.headers]
    with pytest.raises(PoisonMessage, match=reason):
        decode(headers, record.value, record.key)


def test_json_is_exact_on_large_integers_and_compact() -> None:
    value = {"big": 10**30, "text": "é", "n": [1.5, None, True]}
    assert (
        jsonio.dumps(value)
        == ('{"big":1000000000000000000000000000000,"text":"é","n":[1.5,null,true]}').encode()
    )
    assert jsonio.loads(jsonio.dumps(value)) == value
    # what UTF-8 cannot hold is escaped as the standard library does, not refused
    assert jsonio.loads(jsonio.dumps({"s": "\ud800"}).replace(b"\\ud800", b"?")) == {"s": "?"}
    with pytest.raises(ValueError):
        jsonio.loads(b"{not json")


def test_encoded_value_is_the_json_of_the_dumped_event_even_with_a_lone_surrogate() -> None:
    """``encode`` writes the event's JSON in one pass; the bytes are those of dumping
    ``model_dump(mode="json")`` (what the outbox and the relay write), and an event holding a
    lone surrogate, which UTF-8 cannot encode, is still encoded (escaped as the standard library
    does) rather than refused."""
    lead = lead_of("codec@northwind.example")
    for event in (
        form(),
        engagement(lead, url="https://northwind.example/pricing"),
        feedback(lead, "rejected", reason="bad_timing"),
    ):
        assert encode(event).value == jsonio.dumps(event.model_dump(mode="json"))
    odd = engagement(lead).model_copy(update={"campaign": "spring\ud800"})
    assert encode(odd).value == jsonio.dumps(odd.model_dump(mode="json"))
    assert b'"campaign":"spring\\ud800"' in encode(odd).value
