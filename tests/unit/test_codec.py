import json

import pytest

from leadrelay_shared.codec import PoisonMessage, decode, encode
from leadrelay_shared.contracts import Topics
from tests.factories import form


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


@pytest.mark.parametrize("mutate, reason", [
    (lambda h, v: ([x for x in h if x[0] != "ce_type"], v), "missing ce_type"),
    (lambda h, v: ([(k, b"io.unknown" if k == "ce_type" else x) for k, x in h], v), "unknown event type"),
    (lambda h, v: (h, b"{not json"), "not a JSON object"),
    (lambda h, v: (h, json.dumps({"lead_id": "x"}).encode()), "schema violation"),
    (lambda h, v: (h, None), "empty record"),
])
def test_poison_messages_are_named(mutate, reason) -> None:  # type: ignore[no-untyped-def]
    record = encode(form())
    headers, value = mutate(record.headers, record.value)
    with pytest.raises(PoisonMessage, match=reason):
        decode(headers, value, record.key)


def test_id_mismatch_between_header_and_data_is_poison() -> None:
    record = encode(form())
    other = encode(form())
    with pytest.raises(PoisonMessage, match="ce_id"):
        decode(record.headers, other.value, record.key)
