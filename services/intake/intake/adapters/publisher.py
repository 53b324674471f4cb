"""Publishes intake events straight to Kafka: 202 is answered only after acks=all."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from prometheus_client import Histogram

from leadrelay_shared import tracing
from leadrelay_shared.codec import KafkaRecord, encode, traced
from leadrelay_shared.contracts import Event
from leadrelay_shared.kafka import BatchSender, BrokerUnavailable, send_record
from leadrelay_shared.logging import get_logger
from leadrelay_shared.runtime import Runtime

from ..errors import NotAccepted

log = get_logger(__name__)

SEND_SECONDS = Histogram(
    "intake_kafka_send_seconds",
    "Time from send to acks=all",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class KafkaPublisher:
    """Sends through the service's producer, which exists once the service has started."""

    def __init__(self, runtime: Runtime, *, timeout_s: float) -> None:
        self._runtime = runtime
        self._ready = runtime.producer_ready
        self._batches: BatchSender | None = None
        self._timeout = timeout_s

    @property
    def _producer(self) -> AIOKafkaProducer:
        return self._runtime.producer

    async def publish(self, event: Event) -> None:
        if not self._ready.is_set():
            raise NotAccepted("not connected to Kafka yet")
        started = time.perf_counter()
        try:
            await send_record(
                self._producer, traced(encode(event), tracing.current_traceparent()), self._timeout
            )
        except BrokerUnavailable as exc:
            log.warning("kafka_not_acknowledged", events=1, of=1, error=str(exc)[:300])
            raise NotAccepted(str(exc)) from exc
        SEND_SECONDS.observe(time.perf_counter() - started)

    async def publish_records(self, records: Sequence[KafkaRecord]) -> list[Exception | None]:
        if not self._ready.is_set():
            return [NotAccepted("not connected to Kafka yet")] * len(records)
        started = time.perf_counter()
        if self._batches is None:
            self._batches = BatchSender(self._producer)
        if traceparent := tracing.current_traceparent():
            records = [traced(r, traceparent) for r in records]
        outcomes = await self._batches.send(records, self._timeout)
        SEND_SECONDS.observe(time.perf_counter() - started)
        failed = [o for o in outcomes if o is not None]
        if failed:  # the answer says which items to retry; ops see why (no payload in it)
            log.warning(
                "kafka_not_acknowledged",
                events=len(failed),
                of=len(records),
                error=str(failed[0])[:300],
            )
        return outcomes
