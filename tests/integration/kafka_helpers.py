"""Reading topics back in tests (no consumer group: assigned partitions from the start)."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from leadrelay_shared.contracts import Topics


async def read_to_end(bootstrap: str, topic: str,
                      keep: Callable[[ConsumerRecord], bool] = lambda r: True
                      ) -> list[ConsumerRecord]:
    """Every record on ``topic`` up to its end offsets at the time of the call."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(Topics.PARTITIONS[topic])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[ConsumerRecord] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                found.extend(r for r in records if keep(r))
        return found
    finally:
        await consumer.stop()


async def committed_offset(bootstrap: str, group: str, topic: str,
                           partition: int = 0) -> int | None:
    """The offset ``group`` has committed for one partition (read without joining the group)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                              enable_auto_commit=False)
    await reader.start()
    try:
        return await reader.committed(TopicPartition(topic, partition))  # type: ignore[no-any-return]
    finally:
        await reader.stop()
