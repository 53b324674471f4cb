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
@given(st.lists(st.tuples(st.sampled_from(["ce_type", "ce_id", "ce_source", "ce_specversion",
                                           "content-type", "x"]), st.binary(max_size=40)),
                max_size=6),
       st.one_of(st.none(), st.binary(max_size=200)))
def test_decode_only_ever_raises_poison(headers: list[tuple[str, bytes]], value: bytes | None) -> None:
    with contextlib.suppress(PoisonMessage):
        decode(headers, value, None)
