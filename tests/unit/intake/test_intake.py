from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from intake import domain, handlers
from intake.errors import InvalidInput
from intake.schemas import EngagementIn
from leadrelay_shared import identity, jsonio
from leadrelay_shared.codec import encode, encode_payload, json_time
from leadrelay_shared.contracts import Audit, EngagementRecorded, Event, lead_id_for
from tests.unit.intake.fakes import FakePublisher, client


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Ada@Northwind.Example", "ada@northwind.example"),
        ("  ada@northwind.example\t", "ada@northwind.example"),
        ("ａｄａ@northwind.example", "ada@northwind.example"),  # full-width letters, NFKC
    ],
)
def test_email_normalisation(raw: str, expected: str) -> None:
    assert domain.normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "no-at-sign", "a@", "@b.com", "a b@c.com", "x" * 300 + "@a.com"]
)
def test_invalid_email_names_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        domain.normalise_email(raw)
    assert err.value.field == "email"


def _outcome(normalise: Callable[[str], str], raw: str) -> str:
    try:
        return normalise(raw)
    except InvalidInput as exc:
        return f"invalid ({exc.field})"


# Addresses near the edge of the shortcut's shape: odd characters, long and hyphenated labels,
# special-use, numeric and Punycode top-level domains, case, surrounding space.
_LABEL = st.text("aZ09-_", min_size=0, max_size=66)
_TLD = (
    st.sampled_from(
        [
            "com",
            "example",
            "IO",
            "test",
            "local",
            "onion",
            "arpa",
            "invalid",
            "localhost",
            "x",
            "c0m",
            "xn--p1ai",
            "ab--cd",
            "com-",
        ]
    )
    | _LABEL
)
_NEAR_PLAIN = st.builds(
    lambda space, local, labels, tld: f"{space}{local}@{'.'.join([*labels, tld])}{space}",
    st.sampled_from(["", " ", "\t"]),
    st.text('aB9._+-!#~"(),', min_size=0, max_size=70),
    st.lists(_LABEL, min_size=0, max_size=5),
    _TLD,
)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(identity.PLAIN_EMAIL, fullmatch=True) | _NEAR_PLAIN | st.text(max_size=80))
@example("a" * 65 + "@" + "b" * 63 + ".com")  # a long local part is still valid
@example("a@" + "b" * 64 + ".com")  # a label of 64
@example("a@b." + "c" * 64)  # a top-level domain of 64
@example("a" * 200 + "@" + "b" * 50 + ".com")  # 255 characters in all
@example("ab@xn--p1ai.com")
@example("info@northwind.local")
def test_the_email_shortcut_agrees_with_email_validator(raw: str) -> None:
    """Whatever the regular expression lets through, email-validator would have accepted and
    normalised to the same address; everything else is email-validator's own answer."""
    identity.normalise_email.cache_clear()
    assert _outcome(domain.normalise_email, raw) == _outcome(domain.validated_email, raw)


def test_lead_id_is_deterministic_from_normalised_email() -> None:
    a = lead_id_for(domain.normalise_email("Ada@Northwind.example"))
    b = lead_id_for(domain.normalise_email(" ada@northwind.EXAMPLE "))
    assert a == b


def test_free_mail_and_phone() -> None:
    snap = domain.snapshot(email="x@gmail.com", phone="020 7946 0958", country="gb")
    assert snap.is_free_email and snap.email_domain == "gmail.com"
    assert snap.phone == "+442079460958"
    assert domain.snapshot(email="x@northwind.example").is_free_email is False


@given(st.text(st.characters(max_codepoint=0x7F)) | st.text())
def test_clean_text_of_printable_ascii_takes_the_short_way_to_the_same_answer(raw: str) -> None:
    slow = (
        " ".join(
            "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C" or ch in "\t").split()
        )
        or None
    )
    assert domain.clean_text(raw) == slow


def test_control_characters_are_stripped() -> None:
    assert domain.clean_text("Ada\x00\x1b[31m Love\u200blace  ") == "Ada[31m Lovelace"


async def test_form_accepted_after_publish_with_idempotent_event_id() -> None:
    pub = FakePublisher()
    async with client(pub) as c:
        body = {"email": "Ada@Northwind.example", "title": "CTO"}
        r1 = await c.post("/v1/forms", json=body, headers={"Idempotency-Key": "k-1"})
        r2 = await c.post("/v1/forms", json=body, headers={"Idempotency-Key": "k-1"})
        r3 = await c.post("/v1/forms", json=body)
    assert r1.status_code == 202 and r2.status_code == 202
    assert r1.json()["event_id"] == r2.json()["event_id"] != r3.json()["event_id"]
    assert r1.json()["lead_id"] == lead_id_for("ada@northwind.example")
    assert len(pub.events) == 3


async def test_validation_errors_are_problem_documents_naming_the_field() -> None:
    async with client(FakePublisher()) as c:
        bad_type = await c.post("/v1/forms", json={"email": "a@b.example", "company_size": "many"})
        bad_email = await c.post("/v1/forms", json={"email": "not-an-email"})
        no_lead = await c.post("/v1/activities", json={"activity_type": "call"})
    assert bad_type.status_code == 422
    assert bad_type.headers["content-type"] == "application/problem+json"
    assert bad_type.json()["errors"][0]["field"] == "company_size"
    assert bad_email.status_code == 422 and bad_email.json()["errors"][0]["field"] == "email"
    assert no_lead.status_code == 422 and "lead_id or email" in no_lead.json()["detail"]


async def test_body_limit_gives_413() -> None:
    async with client(FakePublisher(), max_body_bytes=1024) as c:
        r = await c.post("/v1/forms", json={"email": "a@b.example", "fields": {"x": "y" * 2000}})
    assert r.status_code == 413 and r.json()["status"] == 413


async def test_broker_down_gives_503_with_retry_after() -> None:
    async with client(FakePublisher(fail=True)) as c:
        r = await c.post("/v1/forms", json={"email": "a@b.example"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


async def test_activity_by_email_maps_to_the_same_lead() -> None:
    pub = FakePublisher()
    async with client(pub) as c:
        r = await c.post(
            "/v1/activities", json={"email": "ADA@northwind.example", "activity_type": "meeting"}
        )
    assert r.status_code == 202
    assert r.json()["lead_id"] == lead_id_for("ada@northwind.example")
    assert uuid.UUID(r.json()["event_id"])


# -- a batch item's event, written as data --------------------------------------------------------

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_OPTIONAL_TEXT = st.none() | st.text(max_size=20) | st.sampled_from(["  q4\tdemo \x07", ""])
_ENGAGEMENT_IN = st.fixed_dictionaries(
    {"engagement_type": st.sampled_from(["page_view", "email_click", "webinar_attended"])},
    optional={
        "email": st.sampled_from(
            ["Ada@Northwind.Example", "ｇrace@contoso.example", "linus+x@mail.example"]
        ),
        "lead_id": st.sampled_from(["lead-1", "00000000-0000-4000-8000-000000000000"]),
        "url": _OPTIONAL_TEXT,
        "campaign": _OPTIONAL_TEXT,
        "properties": st.dictionaries(st.text(max_size=10), _SCALAR, max_size=4),
        "occurred_at": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_ZONES
        ),
        "source_system": st.sampled_from(["marketing", "hubspot"]),
        "source_event_id": st.none() | st.text(min_size=1, max_size=20),
    },
).filter(lambda raw: "email" in raw or "lead_id" in raw)


def _as_model(
    item: EngagementIn, event_id: str, now: datetime, audit: Audit | None
) -> EngagementRecorded:
    """The event built field by field as a model (how intake built it before batches wrote
    data): the reference that ``engagement_data`` is held to."""
    email = domain.normalise_email(item.email) if item.email else None
    if audit is not None and item.source_event_id:
        audit = audit.model_copy(update={"source_event_id": item.source_event_id})
    return EngagementRecorded(
        event_id=uuid.UUID(event_id),
        lead_id=item.lead_id or domain.lead_id_from(None, email),
        occurred_at=item.occurred_at or now,
        received_at=now,
        source_system=item.source_system,
        engagement_type=item.engagement_type,
        url=item.url,
        campaign=domain.clean_text(item.campaign),
        properties={
            k: (domain.clean_text(v) if isinstance(v, str) else v)
            for k, v in item.properties.items()
        },
        email_domain=email.rsplit("@", 1)[1] if email else None,
        audit=audit,
    )


@settings(max_examples=150, deadline=None)
@given(
    _ENGAGEMENT_IN,
    st.booleans(),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)),
)
def test_an_engagements_data_is_the_json_and_record_of_its_event(
    raw: dict[str, object], audited: bool, now: datetime
) -> None:
    """``engagement_data`` (what single events and batch items send, with no model built)
    writes exactly the JSON, and encodes exactly the Kafka record, of the
    ``engagement.recorded`` built as a model; the contract validates it back to that event."""
    item = EngagementIn.model_validate(raw)
    now = now.replace(tzinfo=UTC)
    audit = (
        domain.audit(
            key_id="key-1",
            client_ip="192.0.2.7",
            user_agent="curl/8",
            request_id="req-1",
            ip_hash_key=b"k",
        )
        if audited
        else None
    )
    event_id = str(uuid.uuid4())
    data = handlers.engagement_data(
        item,
        event_id=event_id,
        received_at=json_time(now),
        audit=audit.model_dump() if audit else None,
    )
    model = _as_model(item, event_id, now, audit)
    assert jsonio.dumps(data) == EngagementRecorded.__pydantic_serializer__.to_json(model)
    assert encode_payload(EngagementRecorded.event_type, data) == encode(model)
    assert EngagementRecorded.model_validate(data) == model


@pytest.mark.parametrize("audited", [True, False])
async def test_a_single_engagement_publishes_the_record_of_its_event(audited: bool) -> None:
    """``record_engagement`` publishes ``engagement_data`` as the contract's model, with the
    request's time, audit and the item's source id."""
    item = EngagementIn.model_validate(
        {
            "email": "Ada@Northwind.Example",
            "engagement_type": "email_click",
            "campaign": " q4 ",
            "properties": {"seconds": 12, "note": "a\x00b"},
            "source_event_id": "src-9",
        }
    )
    now = datetime(2026, 12, 3, 7, 30, tzinfo=timezone(timedelta(hours=1)))
    audit = (
        domain.audit(
            key_id="key-1",
            client_ip="192.0.2.7",
            user_agent="curl/8",
            request_id="req-1",
            ip_hash_key=b"k",
        )
        if audited
        else None
    )
    sent: list[object] = []

    class Recording(FakePublisher):
        async def publish(self, event: Event) -> None:
            sent.append(encode(event))

    published = await handlers.record_engagement(
        item,
        publisher=Recording(),
        ctx=handlers.RequestContext(now=now, caller_scope="key-1", audit=audit),
    )
    assert sent == [encode(_as_model(item, str(published.event_id), now, audit))]
    assert published.lead_id == lead_id_for("ada@northwind.example")
