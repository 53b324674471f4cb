"""Property tests: hostile input is rejected with our own errors, never anything else."""

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from intake import domain
from intake.errors import InvalidInput
from leadrelay_shared.codec import PoisonMessage, decode


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_email_normalisation_accepts_or_names_the_field(raw: str) -> None:
    try:
        normalised = domain.normalise_email(raw)
    except InvalidInput as exc:
        assert exc.field == "email"
    else:
        assert normalised == normalised.lower().strip() and "@" in normalised


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["ce_type", "ce_id", "ce_source", "ce_specversion", "content-type", "x"]
            ),
            st.binary(max_size=40),
        ),
        max_size=6,
    ),
    st.one_of(st.none(), st.binary(max_size=200)),
)
def test_decode_only_ever_raises_poison(
    headers: list[tuple[str, bytes]], value: bytes | None
) -> None:
    with contextlib.suppress(PoisonMessage):
        decode(headers, value, None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=30), st.text(max_size=60)), max_size=20))
def test_html_form_mapping_never_fails(pairs: list[tuple[str, str]]) -> None:
    fields, redirect = domain.form_from_fields(pairs)
    assert set(fields) <= domain.FORM_SCALARS | {"fields", "utm", "consent"}
    assert redirect is None or isinstance(redirect, str)


HOSTILE_BODIES = [
    b"\xff\xfe\xfa not utf-8",  # invalid UTF-8
    b'{"email": "a@b.example", "first_name": "\\ud800"}',  # lone surrogate
    b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # deeply nested
    b'{"email": "' + b"x" * 60_000 + b'@b.example"}',  # huge string
    b'{"email": 42, "company_size": "many", "fields": []}',  # wrong types
    b'{"email": "a\\u0000@b.example"}',  # control character
    b"null",
    b"[]",
    b'"just a string"',
    b"",
]


async def test_hostile_bodies_get_a_4xx_problem_document_on_every_endpoint() -> None:
    from tests.unit.intake.fakes import FakePublisher, client

    async with client(FakePublisher()) as c:
        for path in (
            "/v1/forms",
            "/v1/events",
            "/v1/events:batch",
            "/v1/activities",
            "/v1/leads/lead-1/feedback",
            "/v1/adapters/hubspot",
            "/v1/adapters/mautic",
        ):
            for body in HOSTILE_BODIES:
                r = await c.post(path, content=body, headers={"Content-Type": "application/json"})
                assert 400 <= r.status_code < 500, (path, body[:40], r.status_code, r.text[:200])
                assert r.headers["content-type"] == "application/problem+json", (path, body[:40])
