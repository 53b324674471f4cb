"""Kafka clients with the settings leadrelay relies on, stated explicitly.

aiokafka's defaults (``acks=1``, no bound on a send to a dead broker) are too weak for "202 means
durable", so every producer here uses ``acks=all`` with idempotence, and every send is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from .clock import utcnow
from .codec import KafkaRecord, encode
from .contracts import Event, Topics


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge in time; the caller may retry with the same event id."""


@functools.lru_cache(maxsize=1 << 16)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for_key(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """aiokafka's default partitioner (the Java client's murmur2, so every client puts a lead in
    the same partition), with each key's hash remembered: aiokafka's murmur2 is pure Python,
    and the same leads come back event after event."""
    if key is None:
        return DefaultPartitioner()(key, all_partitions, available)  # type: ignore[no-any-return]
    return all_partitions[_key_hash(key) % len(all_partitions)]


# A record batch holds up to 512 KiB (aiokafka's default is 16 KiB, about 20 of our records).
# aiokafka keeps one produce request in flight per broker, carrying one batch per partition, so
# 500 events in 16 KiB batches waited for four acknowledgements in a row. The broker's limit on
# a batch is 1 MiB (message.max.bytes).
MAX_BATCH_BYTES = 512 * 1024


def make_producer(
    bootstrap: str, *, client_id: str, send_timeout_s: float = 2.0
) -> AIOKafkaProducer:
    timeout_ms = max(int(send_timeout_s * 1000), 1000)
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        partitioner=partition_for_key,
        acks="all",
        enable_idempotence=True,
        linger_ms=1,
        max_batch_size=MAX_BATCH_BYTES,
        request_timeout_ms=timeout_ms,
        retry_backoff_ms=100,
        metadata_max_age_ms=60_000,
        connections_max_idle_ms=540_000,
    )


async def send_record(producer: AIOKafkaProducer, record: KafkaRecord, timeout_s: float) -> None:
    """Send and wait for ``acks=all``; never longer than ``timeout_s``.

    ``asyncio.timeout`` bounds the wait in the caller's own task; ``wait_for`` would start a
    task for it (intake's single events pay this once per request)."""
    try:
        async with asyncio.timeout(timeout_s):
            await producer.send_and_wait(
                record.topic, record.value, key=record.key, headers=record.headers
            )
    except (TimeoutError, KafkaError) as exc:
        raise BrokerUnavailable(f"kafka did not acknowledge within {timeout_s}s: {exc!r}") from exc


@dataclass
class _Open:
    """Records waiting for their partition, in one record batch that still takes more."""

    builder: BatchBuilder
    deadline: float  # its first caller's: taken by then, or not sent at all
    taken: asyncio.Future[asyncio.Future[object] | Exception]  # aiokafka's delivery, or why not


class BatchSender:
    """Sends records in record batches, one partition's records from every caller in one.

    The records go into record batches (aiokafka's batch API), which costs far less Python per
    record than one ``send`` each. But ``send_batch`` queues a batch only once its partition has
    none unsent, and aiokafka keeps one produce request in flight per broker, so a partition
    takes one batch per round trip; if each caller sent batches of its own, concurrent callers
    would queue behind each other. Here the records of concurrent calls go into the batch that
    waits for the partition, so one round trip takes all of them. A batch not taken by its first
    caller's deadline is not sent at all; each caller learns, record by record, what was
    acknowledged in time.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._open: dict[tuple[str, int], deque[_Open]] = {}
        self._submitters: dict[tuple[str, int], asyncio.Task[None]] = {}

    async def publish(self, events: Sequence[Event], timeout_s: float) -> list[Exception | None]:
        """Encode the events and ``send`` them."""
        return await self.send([encode(event) for event in events], timeout_s)

    async def send(
        self, records: Sequence[KafkaRecord], timeout_s: float
    ) -> list[Exception | None]:
        """Send every record and wait for all acknowledgements, never longer than ``timeout_s``
        in all; a lead's records keep their order. One outcome per record: None when
        acknowledged, else the error."""
        if not records:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                by_partition = await self._partitions(records)
        except (TimeoutError, KafkaError) as exc:
            return [
                BrokerUnavailable(f"no metadata for the topic within {timeout_s}s: {exc!r}")
            ] * len(records)
        joined = [
            group
            for (topic, partition), indexes in by_partition.items()
            for group in self._join(topic, partition, records, indexes, deadline)
        ]
        await asyncio.wait(
            {batch.taken for batch, _ in joined}, timeout=max(deadline - loop.time(), 0.0)
        )
        taken = [batch.taken.result() for batch, _ in joined if batch.taken.done()]
        deliveries = {delivery for delivery in taken if isinstance(delivery, asyncio.Future)}
        if deliveries:
            await asyncio.wait(deliveries, timeout=max(deadline - loop.time(), 0.0))
        outcomes: list[Exception | None] = [None] * len(records)
        for batch, members in joined:
            outcome = _outcome(batch, timeout_s)
            for index in members:
                outcomes[index] = outcome
        return outcomes

    async def _partitions(self, records: Sequence[KafkaRecord]) -> dict[tuple[str, int], list[int]]:
        partitions: dict[str, list[int]] = {}
        by_partition: dict[tuple[str, int], list[int]] = {}
        for index, record in enumerate(records):
            if record.topic not in partitions:
                partitions[record.topic] = sorted(await self._producer.partitions_for(record.topic))
            where = partition_for_key(
                record.key, partitions[record.topic], partitions[record.topic]
            )
            by_partition.setdefault((record.topic, where), []).append(index)
        return by_partition

    def _join(
        self,
        topic: str,
        partition: int,
        records: Sequence[KafkaRecord],
        indexes: list[int],
        deadline: float,
    ) -> list[tuple[_Open, list[int]]]:
        """Append the records to the partition's last open batch, opening batches as they fill
        (or when the last one's deadline is later than this caller's); returns each batch used
        with the records it holds."""
        queue = self._open.setdefault((topic, partition), deque())
        joined: list[tuple[_Open, list[int]]] = []
        batch = queue[-1] if queue and queue[-1].deadline <= deadline else None
        members: list[int] = []
        for index in indexes:
            record = records[index]
            while (
                batch is None
                or batch.builder.append(
                    key=record.key, value=record.value, timestamp=None, headers=record.headers
                )
                is None
            ):  # none open yet, or full: open one
                if batch is not None and members:
                    joined.append((batch, members))
                    members = []
                batch = _Open(
                    self._producer.create_batch(),
                    deadline,
                    asyncio.get_running_loop().create_future(),
                )
                queue.append(batch)
            members.append(index)
        if batch is not None and members:
            joined.append((batch, members))
        submitter = self._submitters.get((topic, partition))
        if submitter is None or submitter.done():
            self._submitters[(topic, partition)] = asyncio.create_task(
                self._submit(topic, partition, queue), name=f"kafka-batches-{topic}-{partition}"
            )
        return joined

    async def _submit(self, topic: str, partition: int, queue: deque[_Open]) -> None:
        """Queue the partition's open batches with aiokafka in order, each while it still takes
        records from new callers. aiokafka's own wait gives up early (it subtracts the time since
        its first wait at every wait: under load it gave up in 0.4 s of its 2), and a batch it
        refused was not queued, so it is offered again until its deadline."""
        while queue:
            batch = queue[0]
            outcome: asyncio.Future[object] | Exception
            try:
                outcome = await self._offer(batch, topic, partition)
            except (TimeoutError, KafkaError) as exc:
                outcome = BrokerUnavailable(f"kafka did not take the batch in time: {exc!r}")
            else:
                outcome.add_done_callback(_retrieve)
            queue.popleft()
            batch.taken.set_result(outcome)

    async def _offer(self, batch: _Open, topic: str, partition: int) -> asyncio.Future[object]:
        async with asyncio.timeout(batch.deadline - asyncio.get_running_loop().time()):
            while True:
                with contextlib.suppress(KafkaTimeoutError):
                    return await self._producer.send_batch(  # type: ignore[no-any-return]
                        batch.builder, topic, partition=partition
                    )


def _outcome(batch: _Open, timeout_s: float) -> Exception | None:
    if not batch.taken.done():
        return BrokerUnavailable(f"kafka did not take the batch within {timeout_s}s")
    delivery = batch.taken.result()
    if isinstance(delivery, Exception):
        return delivery
    if not delivery.done():
        return BrokerUnavailable(f"kafka did not acknowledge within {timeout_s}s")
    if delivery.exception() is not None:
        return BrokerUnavailable(repr(delivery.exception()))
    return None


def _retrieve(delivery: asyncio.Future[object]) -> None:
    """A delivery whose callers all stopped waiting still has its error looked at (asyncio
    logs an error nobody retrieved)."""
    if not delivery.cancelled():
        delivery.exception()


def dead_letter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    reason: str,
    consumer_group: str,
) -> KafkaRecord:
    """The original record untouched, with where it came from and why it was rejected."""
    extra = [
        ("dlq_reason", reason.encode()[:4000]),
        ("dlq_original_topic", topic.encode()),
        ("dlq_original_partition", str(partition).encode()),
        ("dlq_original_offset", str(offset).encode()),
        ("dlq_consumer_group", consumer_group.encode()),
        ("dlq_at", utcnow().isoformat().encode()),
    ]
    return KafkaRecord(
        topic=Topics.DEAD_LETTER, key=key or b"", value=value or b"", headers=[*headers, *extra]
    )


async def ensure_topics(
    bootstrap: str,
    partitions: Mapping[str, int] | None = None,
    timeout_s: float = 30.0,
    *,
    replication: int = 1,
) -> None:
    """Create leadrelay's topics with explicit partition counts, each partition on
    ``replication`` brokers (idempotent)."""
    wanted = dict(partitions or Topics.PARTITIONS)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(name, n, replication) for name, n in wanted.items() if name not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                await admin.create_topics(new)
    finally:
        await admin.close()


async def start_group_at_end(
    bootstrap: str, group: str, partitions: Mapping[str, int] | None = None
) -> None:
    """Commit ``group``'s offsets at the current end of every partition of leadrelay's topics
    (or of the topics named, with their partition counts).

    A service then started in that group reads exactly what is sent from now on, wherever its
    ``consumer_offset_reset`` points. A ``latest`` reset alone looks the end up only when a member
    is first assigned a partition and fetches, which can be after the first records sent once
    the group is stable: they would be skipped. The topics must exist, and the group must have
    no member yet (the commit is a member-less one)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, p)
            for topic, n in (partitions or Topics.PARTITIONS).items()
            for p in range(n)
        ]
        consumer.assign(tps)
        await consumer.commit(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def read_history(
    bootstrap: str, topics: Sequence[str], *, max_records: int = 500
) -> AsyncIterator[list[ConsumerRecord]]:
    """Every record of ``topics`` (leadrelay's, with their partition counts) from the earliest
    offset up to their ends at the time of the call, in chunks of at most ``max_records``; no
    consumer group, nothing committed. For rebuilding a read model from the topics' history."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=max_records,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(Topics.PARTITIONS[t])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
            for tp, records in batch.items():
                records = [r for r in records if r.offset < ends[tp]]
                if records:
                    yield records
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)


async def group_lags(bootstrap: str, prefix: str = "leadrelay.") -> list[GroupLag]:
    """Every consumer group's committed offset against the end of each partition it has
    committed on, for the topics whose names start with ``prefix``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = sorted(group for group, _ in await admin.list_consumer_groups())
        answers = await asyncio.gather(*map(admin.list_consumer_group_offsets, groups))
        committed = {
            (group, tp): meta.offset
            for group, offsets in zip(groups, answers, strict=True)
            for tp, meta in offsets.items()
            if tp.topic.startswith(prefix) and meta.offset >= 0
        }
    finally:
        await admin.close()
    ends = {}
    if committed:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(sorted({tp for _, tp in committed}))
        finally:
            await consumer.stop()
    return [
        GroupLag(group, tp.topic, tp.partition, offset, ends[tp])
        for (group, tp), offset in sorted(committed.items())
    ]


async def records_on(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` (one of leadrelay's) holds now, over all its partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(Topics.PARTITIONS[topic])]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
    finally:
        await consumer.stop()
    return sum(ends[tp] - starts[tp] for tp in tps)


async def broker_reachable(producer: AIOKafkaProducer, timeout_s: float = 2.0) -> bool:
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=timeout_s)
    except Exception:
        return False
    return True
