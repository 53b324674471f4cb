"""The three-node Kafka cluster `make run BROKERS=3` starts: every partition on three nodes with
two in sync, and a record acknowledged before its leader is killed is still there after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from devstack import kafka
from leadrelay_shared.contracts import Topics
from leadrelay_shared.kafka import ensure_topics, make_producer

pytestmark = pytest.mark.integration


async def read_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(Topics.PARTITIONS[topic])]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        values: list[bytes] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values += [r.value for r in records if r.value is not None]
        return values
    finally:
        await consumer.stop()


async def placed(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    """Where the topic's partitions are, once the node asked knows them all: a topic just
    created reaches each node a moment after the controller."""
    for _ in range(60):
        found = await kafka.partition_leaders(bootstrap, topic)
        if len(found) == Topics.PARTITIONS[topic]:
            break
        await asyncio.sleep(0.5)
    return found


async def test_a_killed_leader_loses_no_acknowledged_record(tmp_path: Path) -> None:
    cluster = await asyncio.to_thread(
        kafka.start_cluster, tmp_path / "kafka", 3, log_path=tmp_path / "kafka.log"
    )
    try:
        bootstrap = cluster.bootstrap
        await ensure_topics(bootstrap, replication=3)
        topic = Topics.INTAKE
        where = await placed(bootstrap, topic)
        assert len(where) == Topics.PARTITIONS[topic]
        assert all(len(replicas) == 3 for _, replicas in where.values())

        producer = make_producer(bootstrap, client_id="t-cluster", send_timeout_s=30)
        await producer.start()
        try:
            for i in range(300):
                await producer.send_and_wait(topic, value=f"{i}".encode(), key=f"k{i}".encode())
            leader, _ = where[0]
            cluster.nodes[leader - 1].process.kill()  # kill -9: no controlled shutdown
            for i in range(300, 600):
                await producer.send_and_wait(topic, value=f"{i}".encode(), key=f"k{i}".encode())
        finally:
            await producer.stop()

        survivors = ",".join(n.bootstrap for n in cluster.nodes if n.process.poll() is None)
        values = await read_all(survivors, topic)
        assert sorted(values, key=int) == [f"{i}".encode() for i in range(600)]
        moved = await kafka.partition_leaders(survivors, topic)
        assert moved[0][0] != leader  # another node leads the partition now
    finally:
        await asyncio.to_thread(cluster.stop)
