from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from intake.domain import IDEMPOTENCY_NAMESPACE
from leadrelay_shared.contracts import LEAD_NAMESPACE
from leadrelay_shared.ids import NameBasedIds

NAMESPACES = (
    st.sampled_from([LEAD_NAMESPACE, IDEMPOTENCY_NAMESPACE, uuid.NAMESPACE_URL]) | st.uuids()
)
NAMES = st.text(st.characters(exclude_categories=["Cs"]))  # uuid5 cannot encode a surrogate


@given(NAMESPACES, NAMES)
def test_name_based_ids_are_uuid5(namespace: uuid.UUID, name: str) -> None:
    ids = NameBasedIds(namespace)
    expected = uuid.uuid5(namespace, name)
    assert ids.uuid(name) == expected
    assert ids.uuid(name).version == 5 and ids.uuid(name).variant == uuid.RFC_4122
    assert ids.text(name) == str(expected)
