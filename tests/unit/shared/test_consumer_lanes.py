"""Splitting a poll into lanes: every record once, each key in one lane, in its order."""

from __future__ import annotations

from aiokafka import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from leadrelay_shared.consumer import split_lanes


def record(offset: int, key: bytes | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t",
        partition=offset % 3,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=b"",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=(),
    )


@given(
    st.lists(st.sampled_from([b"a", b"b", b"c", b"d", b"e", None])),
    st.integers(min_value=0, max_value=5),
)
def test_each_key_is_in_one_lane_in_its_order(keys: list[bytes | None], lanes: int) -> None:
    records = [record(i, k) for i, k in enumerate(keys)]
    out = split_lanes(records, lanes)
    assert len(out) <= max(lanes, 1)
    assert sorted(r.offset for lane in out for r in lane) == list(range(len(records)))
    assert all(out) or out == [[]]
    for key in set(keys):
        holding = [lane for lane in out if any(r.key == key for r in lane)]
        assert len(holding) == 1
        assert [r.offset for r in holding[0] if r.key == key] == [
            r.offset for r in records if r.key == key
        ]


def test_one_lane_is_the_poll_as_it_came() -> None:
    records = [record(i, b"k%d" % i) for i in range(5)]
    assert split_lanes(records, 1) == [records]
    assert split_lanes(records, 0) == [records]
