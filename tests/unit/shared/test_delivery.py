import random
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from leadrelay_shared.delivery import DEFAULT_SCHEDULE_S, next_delay, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_verifies_with_the_official_library() -> None:
    body = '{"type":"lead.assigned","data":{"lead_id":"x"}}'
    headers = sign(SECRET, "msg_1", datetime.now(UTC), body)
    assert Webhook(SECRET).verify(body, headers) == {
        "type": "lead.assigned",
        "data": {"lead_id": "x"},
    }


def test_default_schedule_spans_more_than_a_day() -> None:
    assert sum(DEFAULT_SCHEDULE_S) > 24 * 3600


def test_backoff_grows_with_jitter_then_stops() -> None:
    rnd = random.Random(7)
    schedule = (1.0, 10.0, 100.0)
    delays = [next_delay(n, schedule, rnd) for n in (1, 2, 3)]
    for delay, base in zip(delays, schedule, strict=True):
        assert delay is not None and 0.8 * base <= delay <= 1.2 * base
    assert next_delay(4, schedule, rnd) is None
