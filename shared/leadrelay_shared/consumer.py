"""The consumer loop every service runs: decode, handle in a transaction, then commit offsets.

Per error class the decision is explicit:

* a record that cannot be decoded (``PoisonMessage``) or that a handler rejects for good
  (``PermanentError``) goes to the dead-letter topic with the reason, and the loop moves on;
* an infrastructure failure (database or broker unreachable) is retried with backoff for as long
  as it takes, without committing, so nothing is skipped;
* any other exception is retried a few times (it may be a deadlock or a race), then dead-lettered.

Offsets are committed only after every record of the batch was handled or dead-lettered.

The handler takes a batch: the records of one poll are handled in one transaction (far fewer
round trips). If that fails for a reason that is not transient, the records are handled again
one by one, each a batch of one, so one bad event is dead-lettered alone and its neighbours
still go through.

A batch handler whose transactions touch nothing but the leads of their own records may also run
in ``lanes``: a large poll is then split by record key (the lead id) into that many batches,
handled at once, each in its own transaction on its own connection, and the offsets are committed
when all are done. A lead's records stay in one lane, in their order, and no two lanes lock the
same lead; while one lane waits on the database, another decides. A poll smaller than
``lane_min_records`` per lane is one batch, as without lanes (a small batch costs as much fixed
work per transaction as a large one).

A service may also name the ``event_types`` it handles: a record whose ``ce_type`` header names
another type is skipped before it is decoded (and its offset committed with the rest). Router and
sla-monitor share topics with events they never act on (every ``lead.scored``, every page view);
decoding and validating those only to drop them was most of their consumers' CPU. A record with
no ``ce_type`` at all is still decoded, and dead-lettered as before.

The next batch is collected while the current one is handled. aiokafka's fetcher sends no new
fetch to a broker while records it fetched from there wait unconsumed, so when nothing polls
during a batch, the fetch sent at the last poll returns with the first record that arrives and
the rest wait: without more, most records waited for the batch in progress and then for one
more whole batch. While a batch is handled, a collector task keeps polling (up to
``max_records``), so aiokafka keeps fetching, and what it collected is the next batch. The
collector is cancelled at the end of the batch, while it waits: a poll takes its records from
aiokafka's buffer in one step, without awaiting, so a cancelled poll has taken none.

A consumer off the lead's way (analytics) may instead poll at most once every ``poll_every_s``
while it is caught up, without a collector: each poll takes what arrived since the last, one
transaction a second whatever the rate (a fetch that waits at the broker, ``fetch_wait_ms``,
ends at 1 MiB, so at a high rate it still gives several batches a second). A poll that comes
back full is followed by the next at once, so a backlog (a rebuild) is read at full speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Collection, Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from . import tracing
from .codec import PoisonMessage, decode
from .contracts import Event
from .kafka import dead_letter_record, send_record
from .logging import get_logger
from .metrics import CONSUMED, CONSUMER_LAG, DEAD_LETTERED, HANDLE_SECONDS

log = get_logger(__name__)

BatchHandler = Callable[[Sequence[Event]], Awaitable[None]]


class PermanentError(Exception):
    """The event is well-formed but can never be applied; it is dead-lettered with this reason."""


def is_transient(exc: BaseException) -> bool:
    """Worth running again as it was: the broker or the database was unreachable, or a pooled
    connection had died (through SQLAlchemy, or on a statement sent to asyncpg directly)."""
    if isinstance(exc, (OSError, TimeoutError, ConnectionError, KafkaError)):
        return True
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def split_lanes(records: list[ConsumerRecord], lanes: int) -> list[list[ConsumerRecord]]:
    """The records in at most ``lanes`` lists by key, each key's records in one list in the
    order given; empty lists left out."""
    if lanes <= 1:
        return [records]
    out: list[list[ConsumerRecord]] = [[] for _ in range(lanes)]
    for record in records:
        out[hash(record.key) % lanes].append(record)
    return [lane for lane in out if lane]


Batch = dict[TopicPartition, list[ConsumerRecord]]


def _received(records: Sequence[ConsumerRecord], events: Sequence[Event]) -> list[tracing.Received]:
    """What the batch's trace needs of its records (nothing when tracing is off)."""
    if not tracing.enabled():
        return []
    return [
        tracing.Received(
            event.lead_id,
            str(event.event_id),
            event.event_type,
            record.topic,
            record.partition,
            record.offset,
            dict(record.headers or ()).get(tracing.HEADER),
        )
        for record, event in zip(records, events, strict=True)
    ]


def _merge(into: Batch, more: Batch) -> None:
    for tp, records in more.items():
        into.setdefault(tp, []).extend(records)


class EventConsumer:
    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        batch_handler: BatchHandler,
        producer: AIOKafkaProducer,
        max_records: int = 200,
        send_timeout_s: float = 5.0,
        unexpected_retries: int = 3,
        max_backoff_s: float = 10.0,
        offset_reset: str = "earliest",
        event_types: Collection[str] | None = None,
        lag_every_s: float = 1.0,
        lanes: int = 1,
        lane_min_records: int = 100,
        collect: bool = True,
        fetch_wait_ms: int | None = None,
        poll_every_s: float | None = None,
    ) -> None:
        self.group_id = group_id
        self._poll_every = poll_every_s
        self._polled_at = 0.0
        self._full = False
        self._stopped = asyncio.Event()  # ends a wait between polls
        self._collect_next = collect and poll_every_s is None
        self._lanes = max(lanes, 1)
        self._lane_min = max(lane_min_records, 1)
        self._wanted = None if event_types is None else {t.encode() for t in event_types}
        self._offset_reset = offset_reset
        self._batch_handler = batch_handler
        self._topics = list(topics)
        self._producer = producer
        self._max_records = max_records
        self._send_timeout = send_timeout_s
        self._unexpected_retries = unexpected_retries
        self._max_backoff = max_backoff_s
        self._stopping = False
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._offset_reset,
            isolation_level="read_committed",
            max_poll_records=max_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            # a consumer that is not on a lead's way to its rep waits for fuller fetches (up to
            # fetch_wait_ms, or 1 MiB), so it runs a few large batches, not many small ones
            **(
                {}
                if fetch_wait_ms is None
                else {"fetch_max_wait_ms": fetch_wait_ms, "fetch_min_bytes": 1 << 20}
            ),
        )
        self.started = asyncio.Event()
        self._lag_every_s = lag_every_s
        self._lag_at = 0.0

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()

    async def run(self) -> None:
        try:  # a consumer stopped while it still starts is closed too
            await self._start_with_retry()
            batch: Batch = {}
            while not self._stopping:
                if not batch:
                    batch = await self._poll()
                else:
                    batch = await self._handle_collecting(batch)
                if time.monotonic() - self._lag_at >= self._lag_every_s:
                    await self._report_lag()
        finally:
            await self._consumer.stop()

    async def _poll(self) -> Batch:
        """The next poll; with ``poll_every_s``, not before that long after the last one, unless
        the last one was full."""
        if self._poll_every is not None and not self._full:
            wait = self._polled_at + self._poll_every - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), wait)
        self._polled_at = time.monotonic()
        batch: Batch = await self._consumer.getmany(timeout_ms=200, max_records=self._max_records)
        self._full = sum(map(len, batch.values())) >= self._max_records
        return batch

    async def _handle_collecting(self, batch: Batch) -> Batch:
        """Handle ``batch`` and commit it; returns the records polled meanwhile (each
        partition's in offset order), the next batch: none for a paced consumer, whose next
        poll waits its turn."""
        collected: Batch = {}
        collector = asyncio.create_task(self._collect(collected)) if self._collect_next else None
        try:
            await self._handle_poll(batch)
        finally:
            if collector is not None:
                collector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await collector
        room = self._max_records - sum(map(len, collected.values()))
        if room > 0 and self._poll_every is None:
            _merge(collected, await self._consumer.getmany(timeout_ms=0, max_records=room))
        return collected

    async def _collect(self, into: Batch) -> None:
        """Poll into ``into`` until it holds ``max_records`` (or is cancelled)."""
        room = self._max_records
        while room > 0:
            more = await self._consumer.getmany(timeout_ms=1_000, max_records=room)
            _merge(into, more)
            room -= sum(map(len, more.values()))

    async def _report_lag(self) -> None:
        """``leadrelay_consumer_lag`` of every partition the group holds, at most once per
        ``lag_every_s``: what ops watch to see a service fall behind. Positions are known
        locally once a partition was fetched; one that is not yet is skipped this time."""
        self._lag_at = time.monotonic()
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            try:
                position = await asyncio.wait_for(self._consumer.position(tp), timeout=0.5)
            except (TimeoutError, KafkaError):
                continue
            CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(
                max(high - position, 0)
            )

    async def _start_with_retry(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._consumer.start()
                self.started.set()
                return
            except KafkaError as exc:
                log.warning("consumer_start_failed", group=self.group_id, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)

    async def _handle_poll(self, batch: Batch) -> None:
        """One transaction for a whole poll (or one per lane, at once); each partition's
        records keep their order (a lead lives in one partition, and in one lane), then every
        partition's offset is committed."""
        records = [r for part in batch.values() for r in part]
        lanes = split_lanes(records, min(self._lanes, len(records) // self._lane_min))
        if len(lanes) == 1:
            await self._process_batch(lanes[0])
        else:
            await asyncio.gather(*(self._process_batch(lane) for lane in lanes))
        await self._commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # A rebalance took the partition; the new owner redelivers and idempotency absorbs it.
            log.warning("commit_failed", group=self.group_id, error=repr(exc))

    async def _process_batch(self, records: list[ConsumerRecord]) -> None:
        events: list[Event] = []
        decoded: list[ConsumerRecord] = []
        for record in records:
            headers = list(record.headers or ())
            if self._unwanted(headers):
                continue
            try:
                events.append(decode(headers, record.value, record.key))
                decoded.append(record)
            except PoisonMessage as exc:
                await self._dead_letter(record, headers, exc.reason)
        delay = 0.2
        while events:
            started = time.perf_counter()
            try:
                with tracing.consume(self.group_id, _received(decoded, events)):
                    await self._batch_handler(events)
            except Exception as exc:
                if not is_transient(exc):
                    log.warning(
                        "batch_failed_one_by_one",
                        group=self.group_id,
                        size=len(events),
                        error=repr(exc)[:500],
                    )
                    break
                log.warning(
                    "batch_failed_retrying",
                    group=self.group_id,
                    error=repr(exc)[:500],
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            HANDLE_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)
            CONSUMED.labels(self.group_id, "handled").inc(len(events))
            return
        for record in decoded:
            await self._process(record)

    def _unwanted(self, headers: list[tuple[str, bytes]]) -> bool:
        """True for a record of a type this consumer does not handle (counted as skipped)."""
        if self._wanted is None:
            return False
        for name, value in headers:
            if name == "ce_type":
                if value in self._wanted:
                    return False
                CONSUMED.labels(self.group_id, "skipped").inc()
                return True
        return False

    async def _process(self, record: ConsumerRecord) -> None:
        headers = list(record.headers or ())
        if self._unwanted(headers):
            return
        try:
            event = decode(headers, record.value, record.key)
        except PoisonMessage as exc:
            await self._dead_letter(record, headers, exc.reason)
            return
        attempt, delay = 0, 0.2
        while True:
            started = time.perf_counter()
            try:
                with tracing.consume(self.group_id, _received([record], [event])):
                    await self._batch_handler([event])
                HANDLE_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)
                CONSUMED.labels(self.group_id, "handled").inc()
                return
            except PermanentError as exc:
                await self._dead_letter(record, headers, f"rejected: {exc}")
                return
            except Exception as exc:
                attempt += 1
                transient = is_transient(exc)
                if not transient and attempt > self._unexpected_retries:
                    log.exception(
                        "handler_failed_dead_lettering",
                        group=self.group_id,
                        event_type=event.event_type,
                        event_id=str(event.event_id),
                        lead_id=event.lead_id,
                    )
                    await self._dead_letter(record, headers, f"handler error: {exc!r}"[:2000])
                    return
                log.warning(
                    "handler_failed_retrying",
                    group=self.group_id,
                    event_id=str(event.event_id),
                    lead_id=event.lead_id,
                    attempt=attempt,
                    transient=transient,
                    error=repr(exc)[:500],
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)

    async def _dead_letter(
        self, record: ConsumerRecord, headers: list[tuple[str, bytes]], reason: str
    ) -> None:
        dlq = dead_letter_record(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=headers,
            reason=reason,
            consumer_group=self.group_id,
        )
        delay = 0.5
        while True:
            try:
                await send_record(self._producer, dlq, self._send_timeout)
                break
            except Exception as exc:
                log.warning("dead_letter_publish_failed", group=self.group_id, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
        DEAD_LETTERED.labels(self.group_id).inc()
        CONSUMED.labels(self.group_id, "dead_lettered").inc()
        event_id = dict(headers).get("ce_id", b"")
        log.warning(
            "dead_lettered",
            group=self.group_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            lead_id=record.key.decode(errors="replace") if record.key else None,
            event_id=event_id.decode(errors="replace") or None,
            reason=reason[:300],
        )
