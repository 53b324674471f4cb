"""Leads land in the partition every Kafka client would pick for their key."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from leadrelay_shared.kafka import make_producer, partition_for_key


def test_remembered_hashes_pick_the_partition_aiokafka_and_java_clients_pick() -> None:
    rnd = random.Random(7)
    keys = [rnd.randbytes(rnd.randint(1, 40)) for _ in range(2000)] + [b"lead-1", b"\xff" * 9]
    for count in (1, 3, 6, 12):
        partitions = list(range(count))
        for key in keys + keys:  # the second pass comes from the cache
            assert partition_for_key(key, partitions, partitions) == DefaultPartitioner()(
                key, partitions, partitions
            )
    assert partition_for_key(None, [0, 1, 2], [2]) == 2  # no key: an available partition


async def test_producers_use_it() -> None:
    producer = make_producer("127.0.0.1:1", client_id="test")
    try:
        assert producer._partitioner is partition_for_key
    finally:
        await producer.stop()
