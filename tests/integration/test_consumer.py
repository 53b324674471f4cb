"""The consumer loop on real Kafka and PostgreSQL: redelivery is harmless, poison is
dead-lettered."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from leadrelay_shared.codec import encode
from leadrelay_shared.consumer import EventConsumer, PermanentError, split_lanes
from leadrelay_shared.contracts import Event, FormSubmitted, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import ensure_topics, make_producer, send_record, start_group_at_end
from leadrelay_shared.migrate import upgrade
from scoring import handlers
from scoring.adapters import orm
from scoring.adapters.repository import ScoringUnitOfWork
from scoring.config import default_model
from tests.factories import engagement, form
from tests.infra import Infra
from tests.integration.helpers import committed_offset, read_to_end

pytestmark = pytest.mark.integration


@pytest.fixture
async def producer(infra: Infra) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer, stopped after the test whether it passed or not: one left open makes
    the next test that collects unraisable warnings fail as well."""
    started = make_producer(infra.bootstrap, client_id="test")
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def run_until(
    consumer: EventConsumer, done: Callable[[], Awaitable[bool]], timeout_s: float = 30
) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await done():
            assert not task.done(), task.exception()
            assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 15)


async def test_redelivered_event_changes_nothing_and_poison_goes_to_dead_letter(
    infra: Infra, database_url: str, producer: AIOKafkaProducer
) -> None:
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    event = form()
    record = encode(event)
    poison_key = f"poison-{uuid.uuid4()}".encode()
    # The same event twice (a producer retry or a replay), then garbage, then a valid event.
    await send_record(producer, record, 5)
    again = await producer.send_and_wait(
        record.topic, record.value, key=record.key, headers=record.headers
    )
    poison = await producer.send_and_wait(Topics.INTAKE, b"\x00not-an-event", key=poison_key)
    last = form()
    await send_record(producer, encode(last), 5)

    async def handle(events: Sequence[Event]) -> None:
        await handlers.handle_batch(
            events,
            uow=ScoringUnitOfWork(engine),
            model=default_model(),
            now=lambda: datetime.now(UTC),
        )

    group = f"t-{uuid.uuid4()}"
    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[Topics.INTAKE],
        batch_handler=handle,
        producer=producer,
    )

    async def last_seen() -> bool:
        """The last event handled, and the redelivery and the poison too: partitions are
        consumed side by side, so the ones holding them may come after the last event's."""
        async with engine.connect() as conn:
            seen = await conn.scalar(
                sa.select(sa.func.count()).where(orm.leads.c.lead_id == last.lead_id)
            )
        for sent in (again, poison):
            done = await committed_offset(infra.bootstrap, group, Topics.INTAKE, sent.partition)
            if done is None or done <= sent.offset:
                return False
        return bool(seen)

    with structlog.testing.capture_logs() as logged:
        await run_until(consumer, last_seen)
    # the log says which lead's record went to the dead-letter topic (its key), and why
    (said,) = [e for e in logged if e["event"] == "dead_lettered" and e["group"] == group]
    assert said["lead_id"] == poison_key.decode() and "missing ce_type" in said["reason"]
    async with engine.connect() as conn:
        fills = await conn.scalar(
            sa.select(orm.leads.c.form_fills).where(orm.leads.c.lead_id == event.lead_id)
        )
        outbox = await conn.scalar(
            sa.select(sa.func.count()).where(orm.outbox.c.lead_id == event.lead_id)
        )
    assert fills == 1
    assert outbox == 3  # one LeadScored, two StageChanged: not doubled

    dead = await read_to_end(
        infra.bootstrap, Topics.DEAD_LETTER, keep=lambda r: r.key == poison_key
    )
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert b"missing ce_type" in headers["dlq_reason"]
    assert headers["dlq_original_topic"] == Topics.INTAKE.encode()
    assert dead[0].value == b"\x00not-an-event"
    await engine.dispose()


async def test_records_of_types_the_service_does_not_handle_are_skipped_undecoded(
    infra: Infra, producer: AIOKafkaProducer
) -> None:
    """A consumer that names its event types never decodes the others: a page view with broken
    data is skipped, not dead-lettered, and the form after it is handled."""
    topic = f"leadrelay.test.skip.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.bootstrap, {topic: 1})
    wanted = form()
    view = encode(engagement(wanted.lead_id))
    broken_key = f"broken-{uuid.uuid4()}".encode()
    await producer.send_and_wait(topic, b"{not json", key=broken_key, headers=view.headers)
    await producer.send_and_wait(topic, view.value, key=view.key, headers=view.headers)
    record = encode(wanted)
    await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
    seen: list[Event] = []

    async def many(events: Sequence[Event]) -> None:
        seen.extend(events)

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=f"t-{uuid.uuid4()}",
        topics=[topic],
        batch_handler=many,
        producer=producer,
        event_types=[FormSubmitted.event_type],
    )

    async def form_seen() -> bool:
        return bool(seen)

    await run_until(consumer, form_seen)
    assert [e.event_id for e in seen] == [wanted.event_id]
    dead = await read_to_end(
        infra.bootstrap, Topics.DEAD_LETTER, keep=lambda r: r.key == broken_key
    )
    assert dead == []


async def test_a_group_started_at_the_end_reads_only_what_is_sent_afterwards(
    infra: Infra, producer: AIOKafkaProducer
) -> None:
    """Whatever its offset reset: with ``earliest``, the default, it would read the old form."""
    topic = f"leadrelay.test.start.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.bootstrap, {topic: 1})
    old, new = encode(form()), form()
    await producer.send_and_wait(topic, old.value, key=old.key, headers=old.headers)
    group = f"t-{uuid.uuid4()}"
    await start_group_at_end(infra.bootstrap, group, {topic: 1})
    record = encode(new)
    await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
    seen: list[Event] = []

    async def many(events: Sequence[Event]) -> None:
        seen.extend(events)

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[topic],
        batch_handler=many,
        producer=producer,
    )

    async def new_seen() -> bool:
        return any(e.event_id == new.event_id for e in seen)

    await run_until(consumer, new_seen)
    assert [e.event_id for e in seen] == [new.event_id]


async def test_the_lag_gauge_shows_a_group_behind_then_caught_up(
    infra: Infra, producer: AIOKafkaProducer
) -> None:
    """``leadrelay_consumer_lag`` is what ops alert on: records waiting for the group."""
    topic = f"leadrelay.test.lag.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.bootstrap, {topic: 1})
    n = 60
    for _ in range(n):
        record = encode(form())
        await producer.send(topic, record.value, key=record.key, headers=record.headers)
    await producer.flush()
    group = f"t-{uuid.uuid4()}"
    handled: list[Event] = []
    seen_lags: list[float] = []

    async def slow(events: Sequence[Event]) -> None:
        handled.extend(events)
        await asyncio.sleep(0.15)

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[topic],
        batch_handler=slow,
        producer=producer,
        max_records=10,
        lag_every_s=0.05,
    )

    def lag() -> float | None:
        return REGISTRY.get_sample_value(
            "leadrelay_consumer_lag", {"group": group, "topic": topic, "partition": "0"}
        )

    async def caught_up() -> bool:
        value = lag()
        if value is not None:
            seen_lags.append(value)
        return len(handled) == n and value == 0

    await run_until(consumer, caught_up)
    assert max(seen_lags) >= 20  # behind by at least two polls' worth at some point
    assert seen_lags[-1] == 0


def leads_in_both_lanes(leads: int) -> list[str]:
    """``leads`` lead ids that two lanes share between them. ``split_lanes`` goes by the key's
    hash, which Python salts per process: random ids all fell in one lane one run in
    2 ** (leads - 1), and a test of two lanes then saw one."""
    while True:
        ids = [form().lead_id for _ in range(leads)]
        keyed = [SimpleNamespace(key=lead.encode()) for lead in ids]  # what split_lanes reads
        if len(split_lanes(keyed, 2)) == 2:
            return ids


async def engagements_on_one_partition(
    bootstrap: str, producer: AIOKafkaProducer, leads: int, count: int, *, both_lanes: bool = False
) -> tuple[str, list[Event]]:
    """A new one-partition topic (so a poll's split is by lead alone) holding ``count``
    engagements of ``leads`` leads in turn, sent with ``producer``; returns it and the events."""
    topic = f"leadrelay.test.lanes.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, {topic: 1})
    ids = leads_in_both_lanes(leads) if both_lanes else [form().lead_id for _ in range(leads)]
    sent: list[Event] = [engagement(ids[i % leads]) for i in range(count)]
    for event in sent:
        record = encode(event)
        await producer.send(topic, record.value, key=record.key, headers=record.headers)
    await producer.flush()
    return topic, sent


async def test_lanes_handle_one_poll_as_concurrent_batches_each_lead_in_one(
    infra: Infra, producer: AIOKafkaProducer
) -> None:
    """With lanes, a large poll is several batches at once: every record is handled once, a
    lead's records stay in one batch in their order, no lead is in two batches at the same
    time, and the offsets are committed after all of them."""
    topic, sent = await engagements_on_one_partition(
        infra.bootstrap, producer, 12, 240, both_lanes=True
    )
    group = f"t-{uuid.uuid4()}"
    handled: list[Event] = []
    in_flight: set[str] = set()
    running = most = 0

    async def many(events: Sequence[Event]) -> None:
        nonlocal running, most
        mine = {e.lead_id for e in events}
        assert not mine & in_flight, "a lead in two batches at once"
        in_flight.update(mine)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)  # a transaction's wait on the database
        handled.extend(events)
        running -= 1
        in_flight.difference_update(mine)

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[topic],
        batch_handler=many,
        producer=producer,
        max_records=120,
        lanes=2,
        lane_min_records=10,
    )

    async def all_handled() -> bool:
        return len(handled) >= len(sent)

    await run_until(consumer, all_handled)
    assert sorted(e.event_id.hex for e in handled) == sorted(e.event_id.hex for e in sent)
    for lead in {e.lead_id for e in sent}:
        assert [e.event_id for e in handled if e.lead_id == lead] == [
            e.event_id for e in sent if e.lead_id == lead
        ]
    assert most == 2  # two batches were in flight together
    assert await committed_offset(infra.bootstrap, group, topic) == len(sent)


async def test_a_lane_that_fails_goes_one_by_one_and_its_neighbour_lane_stands(
    infra: Infra, producer: AIOKafkaProducer
) -> None:
    """A lane whose batch fails for good is handled again one event at a time (the bad event
    dead-lettered alone), while the other lane's batch stays handled once; the offsets are
    committed after both."""
    topic, sent = await engagements_on_one_partition(
        infra.bootstrap, producer, 8, 80, both_lanes=True
    )
    bad = sent[37]
    group = f"t-{uuid.uuid4()}"
    in_batches: list[Event] = []
    one_by_one: list[Event] = []
    failed_batches = 0

    async def many(events: Sequence[Event]) -> None:
        nonlocal failed_batches
        if len(events) == 1:  # the consumer's retry, one event at a time
            if events[0].event_id == bad.event_id:
                raise PermanentError("this event can never be applied")
            one_by_one.extend(events)
            return
        if any(e.event_id == bad.event_id for e in events):
            failed_batches += 1
            raise ValueError("a bug that only this batch meets")
        await asyncio.sleep(0.02)
        in_batches.extend(events)

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[topic],
        batch_handler=many,
        producer=producer,
        max_records=80,
        lanes=2,
        lane_min_records=10,
    )

    async def settled() -> bool:
        return len(in_batches) + len(one_by_one) >= len(sent) - 1

    await run_until(consumer, settled)
    handled = in_batches + one_by_one
    assert sorted(e.event_id.hex for e in handled) == sorted(
        e.event_id.hex for e in sent if e is not bad
    )
    assert failed_batches >= 1 and in_batches and one_by_one
    assert bad.lead_id in {e.lead_id for e in one_by_one}  # the failed lane, event by event
    dead = await read_to_end(
        infra.bootstrap, Topics.DEAD_LETTER, keep=lambda r: r.key == bad.lead_id.encode()
    )
    assert [dict(r.headers)["dlq_reason"] for r in dead] == [
        b"rejected: this event can never be applied"
    ]
    assert await committed_offset(infra.bootstrap, group, topic) == len(sent)


@pytest.mark.parametrize("collect", [False, True])
async def test_what_arrives_while_a_batch_is_handled_is_the_next_batch(
    infra: Infra, producer: AIOKafkaProducer, collect: bool
) -> None:
    """While the first batch is handled, two more events of its lead arrive, 300 ms apart.
    aiokafka's fetch returns with the first and fetches nothing more while it waits unconsumed,
    so without the collector the next poll brings the first alone and the second waits for one
    more batch. The collector polls while the batch is handled, so both are the next batch.
    (The split without it is as aiokafka 0.14 fetches; if a later aiokafka fetches on its own,
    that case fails and the collector can go.)"""
    topic, sent = await engagements_on_one_partition(infra.bootstrap, producer, 1, 1)
    lead = sent[0].lead_id
    later = [engagement(lead), engagement(lead)]
    batches: list[list[uuid.UUID]] = []

    async def many(events: Sequence[Event]) -> None:
        batches.append([e.event_id for e in events])
        if len(batches) == 1:
            for event in later:
                record = encode(event)
                await producer.send_and_wait(
                    topic, record.value, key=record.key, headers=record.headers
                )
                await asyncio.sleep(0.3)

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=f"t-{uuid.uuid4()}",
        topics=[topic],
        batch_handler=many,
        producer=producer,
        collect=collect,
    )

    async def all_handled() -> bool:
        return sum(map(len, batches)) >= 3

    await run_until(consumer, all_handled)
    assert batches[0] == [sent[0].event_id]
    if collect:
        assert batches[1:] == [[later[0].event_id, later[1].event_id]]
    else:
        assert batches[1:] == [[later[0].event_id], [later[1].event_id]]


async def test_a_collected_batch_holds_at_most_max_records_and_nothing_is_lost(
    infra: Infra, producer: AIOKafkaProducer
) -> None:
    """60 waiting events, ``max_records`` 20, slow batches: the collector stops at 20, and every
    event is handled once, in order, and committed."""
    topic, sent = await engagements_on_one_partition(infra.bootstrap, producer, 3, 60)
    group = f"t-{uuid.uuid4()}"
    batches: list[list[Event]] = []

    async def many(events: Sequence[Event]) -> None:
        batches.append(list(events))
        await asyncio.sleep(0.1)

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[topic],
        batch_handler=many,
        producer=producer,
        max_records=20,
    )

    async def all_handled() -> bool:
        return sum(map(len, batches)) >= len(sent)

    await run_until(consumer, all_handled)
    assert max(map(len, batches)) <= 20
    assert [e.event_id for b in batches for e in b] == [e.event_id for e in sent]
    assert await committed_offset(infra.bootstrap, group, topic) == len(sent)


async def test_a_paced_consumer_reads_a_backlog_without_waiting_between_full_polls(
    infra: Infra, producer: AIOKafkaProducer
) -> None:
    """60 waiting events, ``max_records`` 20, at most one poll every 5 s while caught up: a
    full poll is followed by the next at once, so the three batches of the backlog come
    together, not 5 s apart; and a consumer waiting between polls stops at once."""
    topic, sent = await engagements_on_one_partition(infra.bootstrap, producer, 3, 60)
    group = f"t-{uuid.uuid4()}"
    batches: list[tuple[float, list[Event]]] = []

    async def many(events: Sequence[Event]) -> None:
        batches.append((time.monotonic(), list(events)))

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[topic],
        batch_handler=many,
        producer=producer,
        max_records=20,
        poll_every_s=5,
    )
    task = asyncio.create_task(consumer.run())
    try:
        while sum(len(b) for _, b in batches) < len(sent):
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the poll after the backlog came back empty: now it waits
    finally:
        stopping = time.monotonic()
        consumer.stop()
        await asyncio.wait_for(task, 15)
    assert time.monotonic() - stopping < 2.5
    assert batches[-1][0] - batches[0][0] < 2.5
    assert [e.event_id for _, b in batches for e in b] == [e.event_id for e in sent]
    assert await committed_offset(infra.bootstrap, group, topic) == len(sent)


@pytest.mark.parametrize(
    ("fetch_wait_ms", "poll_every_s"), [(None, None), (400, None), (None, 0.4)]
)
async def test_a_patient_consumer_reads_a_trickle_in_a_few_batches(
    infra: Infra,
    producer: AIOKafkaProducer,
    fetch_wait_ms: int | None,
    poll_every_s: float | None,
) -> None:
    """40 events sent one at a time, 25 ms apart (a second in all), to a started consumer. By
    default each fetch answers with whatever is there, so the trickle comes in many batches; a
    consumer that waits for fuller fetches (sla-monitor's) or polls at most every 0.4 s
    (analytics') takes it in a few, and loses nothing."""
    topic = f"leadrelay.test.trickle.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.bootstrap, {topic: 1})
    group = f"t-{uuid.uuid4()}"
    await start_group_at_end(infra.bootstrap, group, {topic: 1})
    batches: list[list[Event]] = []

    async def many(events: Sequence[Event]) -> None:
        batches.append(list(events))

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=group,
        topics=[topic],
        batch_handler=many,
        producer=producer,
        fetch_wait_ms=fetch_wait_ms,
        poll_every_s=poll_every_s,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(consumer.started.wait(), 30)
        await asyncio.sleep(1.0)  # the group formed and the first fetch waits
        lead = form().lead_id
        sent = [engagement(lead) for _ in range(40)]
        for event in sent:
            record = encode(event)
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=record.headers
            )
            await asyncio.sleep(0.025)
        while sum(map(len, batches)) < len(sent):
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 15)
    assert [e.event_id for b in batches for e in b] == [e.event_id for e in sent]
    if fetch_wait_ms is None and poll_every_s is None:
        assert len(batches) >= 16, len(batches)
    else:
        assert len(batches) <= 8, len(batches)


async def test_connections_ended_under_a_running_consumer_lose_and_double_nothing(
    infra: Infra, database_url: str, producer: AIOKafkaProducer
) -> None:
    """Pooled connections are not pinged before use (``db.make_engine``). When the server ends
    them between two batches, the next batch meets a dead connection on its first statement:
    it is retried as transient, and every form is handled exactly once."""
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    name = f"lr-test-{uuid.uuid4().hex[:8]}"
    engine, admin = make_engine(database_url, name=name), make_engine(database_url, pool_size=1)
    topic = f"leadrelay.test.ended.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.bootstrap, {topic: 1})
    forms = [form() for _ in range(20)]

    async def many(events: Sequence[Event]) -> None:
        await handlers.handle_batch(
            events,
            uow=ScoringUnitOfWork(engine),
            model=default_model(),
            now=lambda: datetime.now(UTC),
        )

    async def seen(events: list[FormSubmitted]) -> bool:
        async with admin.connect() as conn:
            return await conn.scalar(
                sa.select(sa.func.count()).where(
                    orm.leads.c.lead_id.in_([e.lead_id for e in events])
                )
            ) == len(events)

    async def send(events: list[FormSubmitted]) -> None:
        for event in events:
            record = encode(event)
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=record.headers
            )

    consumer = EventConsumer(
        bootstrap=infra.bootstrap,
        group_id=f"t-{uuid.uuid4()}",
        topics=[topic],
        batch_handler=many,
        producer=producer,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await send(forms[:10])
        while not await seen(forms[:10]):
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
        async with admin.connect() as conn:
            ended = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            )
        assert ended >= 1, "the consumer's pooled connections should have been ended"
        await send(forms[10:])
        for _ in range(300):
            if await seen(forms):
                break
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
        assert await seen(forms)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 15)
    async with admin.connect() as conn:
        fills = (
            (
                await conn.execute(
                    sa.select(orm.leads.c.form_fills).where(
                        orm.leads.c.lead_id.in_([e.lead_id for e in forms])
                    )
                )
            )
            .scalars()
            .all()
        )
        outbox = await conn.scalar(
            sa.select(sa.func.count()).where(orm.outbox.c.lead_id.in_([e.lead_id for e in forms]))
        )
    assert sorted(fills) == [1] * len(forms)
    assert outbox == 3 * len(forms)  # each: LeadScored and two StageChanged, none doubled
    await engine.dispose()
    await admin.dispose()
