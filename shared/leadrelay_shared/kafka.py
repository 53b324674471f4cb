"""Kafka clients with the settings leadrelay relies on, stated explicitly.

aiokafka's defaults (``acks=1``, no bound on a send to a dead broker) are too weak for "202 means
durable", so every producer here uses ``acks=all`` with idempotence, and every send is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from .codec import KafkaRecord, encode
from .contracts import Event, Topics


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge in time; the caller may retry with the same event id."""


@functools.lru_cache(maxsize=1 << 16)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for_key(key: bytes | None, all_partitions: Sequence[int],
                      available: Sequence[int]) -> int:
    """aiokafka's default partitioner (the Java client's murmur2, so every client puts a lead in
    the same partition), with each key's hash remembered: aiokafka's murmur2 is pure Python,
    about 10 µs per lead id, and the same leads come back event after event."""
    if key is None:
        return DefaultPartitioner()(key, all_partitions, available)  # type: ignore[no-any-return]
    return all_partitions[_key_hash(key) % len(all_partitions)]


# A record batch holds up to 512 KiB (aiokafka's default is 16 KiB, about 20 of our records).
# aiokafka keeps one produce request in flight per broker, carrying one batch per partition, so
# 500 events in 16 KiB batches waited for four acknowledgements in a row. The broker's limit on
# a batch is 1 MiB (message.max.bytes).
MAX_BATCH_BYTES = 512 * 1024


def make_producer(bootstrap: str, *, client_id: str,
                  send_timeout_s: float = 2.0) -> AIOKafkaProducer:
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
            await producer.send_and_wait(record.topic, record.value, key=record.key,
                                         headers=record.headers)
    except (TimeoutError, KafkaError) as exc:
        raise BrokerUnavailable(f"kafka did not acknowledge within {timeout_s}s: {exc!r}") from exc


async def publish(producer: AIOKafkaProducer, event: Event, timeout_s: float) -> None:
    await send_record(producer, encode(event), timeout_s)


async def publish_many(producer: AIOKafkaProducer, events: Sequence[Event],
                       timeout_s: float) -> list[Exception | None]:
    """Send every event at once and wait for all acknowledgements (``send_records``)."""
    return await send_records(producer, [encode(event) for event in events], timeout_s)


async def send_records(producer: AIOKafkaProducer, records: Sequence[KafkaRecord],
                       timeout_s: float) -> list[Exception | None]:
    """Send every record at once and wait for all acknowledgements; a lead's records keep their
    order.

    The records go into one record batch per partition (aiokafka's batch API) instead of one
    ``send`` each: a ``send`` is about 20 µs of Python per record, an append to a batch a few.
    A partition's batch is queued once the partition has no unsent batch left; the partitions
    wait for that at once, not one after another. One after another, event batches spanning
    the twelve partitions of ``leadrelay.intake.v1`` were refused at 300 leads/s end to end
    ("kafka did not take the batch within 2.0s", intake's ``503``); at once, the next run held
    300 leads/s without a refusal and was refused first at 400 (one run each, 2026-12-01).
    Returns one outcome per record: None when acknowledged, else the error. Never waits longer
    than ``timeout_s`` in total.
    """
    async def send_all() -> list[tuple[asyncio.Future[object], list[int]]]:
        partitions: dict[str, list[int]] = {}
        by_partition: dict[tuple[str, int], list[int]] = {}
        for index, record in enumerate(records):
            if record.topic not in partitions:
                partitions[record.topic] = sorted(await producer.partitions_for(record.topic))
            where = partition_for_key(record.key, partitions[record.topic],
                                      partitions[record.topic])
            by_partition.setdefault((record.topic, where), []).append(index)
        per_partition = await asyncio.gather(*(
            partition_batches(topic, partition, indexes)
            for (topic, partition), indexes in by_partition.items()))
        return [batch for batches in per_partition for batch in batches]

    async def partition_batches(topic: str, partition: int, indexes: list[int]
                                ) -> list[tuple[asyncio.Future[object], list[int]]]:
        """One partition's records in batches, each queued after the one before (a lead's
        order); the partitions wait for their queues at once, not one after another."""
        sent: list[tuple[asyncio.Future[object], list[int]]] = []
        batch = producer.create_batch()
        members: list[int] = []
        for index in indexes:
            record = records[index]
            while batch.append(key=record.key, value=record.value, timestamp=None,
                               headers=record.headers) is None:  # full: send it, start one
                sent.append((await submit(batch, topic, partition), members))
                batch, members = producer.create_batch(), []
            members.append(index)
        sent.append((await submit(batch, topic, partition), members))
        return sent

    async def submit(batch: BatchBuilder, topic: str, partition: int) -> asyncio.Future[object]:
        """``send_batch`` waits while the partition has a batch queued (another request's). Its
        bound runs out early: aiokafka subtracts the time since its first wait at every wait, so
        under load it gave up in 0.4 s of its 2. A batch refused that way was not queued (as
        aiokafka documents), so it is offered again until our own deadline."""
        while True:
            try:
                return await producer.send_batch(batch, topic, partition=partition)  # type: ignore[no-any-return]
            except KafkaTimeoutError:
                if loop.time() >= deadline:
                    raise

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        sent = await asyncio.wait_for(send_all(), timeout=timeout_s)
    except (TimeoutError, KafkaError) as exc:
        failure = BrokerUnavailable(f"kafka did not take the batch within {timeout_s}s: {exc!r}")
        return [failure] * len(records)
    if sent:
        await asyncio.wait([future for future, _ in sent],
                           timeout=max(deadline - loop.time(), 0.0))
    outcomes: list[Exception | None] = [None] * len(records)
    for future, members in sent:
        outcome: Exception | None = None
        if not future.done():
            future.cancel()
            outcome = BrokerUnavailable(f"kafka did not acknowledge within {timeout_s}s")
        elif future.exception() is not None:
            outcome = BrokerUnavailable(repr(future.exception()))
        for index in members:
            outcomes[index] = outcome
    return outcomes


def dead_letter_record(*, topic: str, partition: int, offset: int, key: bytes | None,
                       value: bytes | None, headers: list[tuple[str, bytes]], reason: str,
                       consumer_group: str) -> KafkaRecord:
    """The original record untouched, with where it came from and why it was rejected."""
    extra = [
        ("dlq_reason", reason.encode()[:4000]),
        ("dlq_original_topic", topic.encode()),
        ("dlq_original_partition", str(partition).encode()),
        ("dlq_original_offset", str(offset).encode()),
        ("dlq_consumer_group", consumer_group.encode()),
        ("dlq_at", datetime.now(UTC).isoformat().encode()),
    ]
    return KafkaRecord(topic=Topics.DEAD_LETTER, key=key or b"", value=value or b"",
                       headers=[*headers, *extra])


async def ensure_topics(bootstrap: str, partitions: Mapping[str, int] | None = None,
                        timeout_s: float = 30.0) -> None:
    """Create leadrelay's topics with explicit partition counts (idempotent)."""
    wanted = dict(partitions or Topics.PARTITIONS)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                await admin.create_topics(new)
    finally:
        await admin.close()


async def broker_reachable(producer: AIOKafkaProducer, timeout_s: float = 2.0) -> bool:
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=timeout_s)
    except Exception:
        return False
    return True
