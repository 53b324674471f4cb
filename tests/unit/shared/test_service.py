"""The service skeleton: what a declared batch wakes once it has committed."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from leadrelay_shared.contracts import Event
from leadrelay_shared.service import Service, Subscription
from leadrelay_shared.settings import ServiceSettings
from tests.factories import form


class Waker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


@pytest.mark.parametrize(
    ("answer", "wakes_deliverer", "relay", "deliverer"),
    [(None, False, 1, 0), (True, True, 1, 1), (False, True, 0, 0), (None, True, 1, 1)],
)
async def test_a_batch_wakes_what_it_gave_work_to(
    answer: bool | None, wakes_deliverer: bool, relay: int, deliverer: int
) -> None:
    """A handler that says False sent nothing; otherwise the relay is woken, and the deliverer
    only for a subscription that queues deliveries for it."""

    async def handle(events: Sequence[Event]) -> bool | None:
        return answer

    service = Service("test", ServiceSettings())
    service._relay, service._deliverer = Waker(), Waker()  # type: ignore[assignment]
    sub = Subscription("s", ["t"], "g", handle, wakes_deliverer=wakes_deliverer)
    await service.batch_handler(sub)([form()])
    assert (service._relay.woken, service._deliverer.woken) == (relay, deliverer)  # type: ignore[union-attr]


def test_a_service_with_an_outbox_or_webhooks_measures_its_backlog() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from scoring.adapters import orm

    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    relaying = Service("test", ServiceSettings(), engine=engine, outbox=orm.outbox)
    assert "backlog" in [job.name for job in relaying._all_jobs()]
    plain = Service("test", ServiceSettings(), engine=engine)
    assert "backlog" not in [job.name for job in plain._all_jobs()]
