"""``bench.e2e.trace`` reads each lead's first event of a type back from the topics, and what
each process of the stack burns."""

from __future__ import annotations

import json
import subprocess
import sys

from aiokafka.structs import ConsumerRecord

from bench.e2e.trace import cpu_seconds, stamps


def record(
    lead: str, ce_type: str, data: dict[str, object], at_ms: int
) -> ConsumerRecord[bytes, bytes]:
    value = json.dumps(data).encode()
    return ConsumerRecord(
        topic="t",
        partition=0,
        offset=0,
        timestamp=at_ms,
        timestamp_type=0,
        key=lead.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(lead),
        serialized_value_size=len(value),
        headers=[("ce_type", ce_type.encode())],
    )


def test_each_leads_first_matching_event_gives_its_instants() -> None:
    changed = "io.leadrelay.stage.changed"
    records = [
        record("a", changed, {"to_stage": "inquiry", "occurred_at": "2026-12-01T10:00:00Z"}, 1),
        record("a", changed, {"to_stage": "mql", "occurred_at": "2026-12-01T10:00:01Z"}, 2_000),
        record("a", changed, {"to_stage": "mql", "occurred_at": "2026-12-01T11:00:00Z"}, 9_000),
        record("b", "io.leadrelay.lead.scored", {"occurred_at": "2026-12-01T10:00:00Z"}, 3_000),
    ]
    decided, published = stamps(records, changed, lambda d: d["to_stage"] == "mql")
    assert decided == {"a": 1_796_119_201.0} and published == {"a": 2.0}


def test_processes_named_apart_count_under_their_name() -> None:
    # as a service's PostgreSQL server processes are counted with the service, not PostgreSQL
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    command = [sys.executable, "-c", busy + "print(flush=True)\ntime.sleep(30)"]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as worker:
        try:
            assert worker.stdout is not None and worker.stdout.readline()  # it has burnt its CPU
            assert cpu_seconds({worker.pid: "worker"})["worker"] >= 0.3
            assert "worker" not in cpu_seconds()
        finally:
            worker.kill()
