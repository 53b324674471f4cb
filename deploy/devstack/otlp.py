"""A small OTLP/HTTP trace receiver, for the tests, the benchmarks and a look at traces without
a collector: ``python -m devstack.otlp --port 4318`` prints each span as it arrives.

It decodes what exporters send to ``/v1/traces`` with the official protobuf messages
(``opentelemetry-proto``): binary protobuf, or its JSON mapping, gzip or not.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .receiver import InThread

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace id, span id) of each linked span
    status_code: int


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


def spans_of(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    out = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        service=service,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex() or None,
                        name=s.name,
                        kind=s.kind,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        links=tuple((lk.trace_id.hex(), lk.span_id.hex()) for lk in s.links),
                        status_code=s.status.code,
                    )
                )
    return out


@dataclass
class OtlpReceiver:
    port: int
    host: str = "127.0.0.1"
    spans: list[ReceivedSpan] = field(default_factory=list)
    keep: bool = True  # False: count the spans, keep none
    requests: int = 0
    counted: int = 0
    on_span: Callable[[ReceivedSpan], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _served: InThread | None = None

    @property
    def endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` says to send here."""
        return f"http://{self.host}:{self.port}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            body = await request.body()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            message = ExportTraceServiceRequest()
            if request.headers.get("content-type", PROTOBUF).startswith("application/json"):
                json_format.Parse(body, message)
            else:
                message.ParseFromString(body)
            received = spans_of(message)
            with self._lock:
                self.requests += 1
                self.counted += len(received)
                if self.keep:
                    self.spans.extend(received)
            if self.on_span is not None:
                for s in received:
                    self.on_span(s)
            return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

        @app.get("/stats")
        async def stats() -> dict[str, int]:
            """How much arrived (a benchmark reads it from another process)."""
            with self._lock:
                return {"requests": self.requests, "spans": self.counted}

        return app

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans of one trace, in the order they started."""
        with self._lock:
            return sorted(
                (s for s in self.spans if s.trace_id == trace_id), key=lambda s: s.start_ns
            )

    def named(self, name: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.name == name]

    async def wait_for(self, found: Callable[[OtlpReceiver], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if found(self):
                return True
            await asyncio.sleep(0.1)
        return found(self)

    def start(self) -> None:
        self._served = InThread.serve(self.app(), self.host, self.port)

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()


def _print(span: ReceivedSpan) -> None:
    took_ms = (span.end_ns - span.start_ns) / 1e6
    lead = span.attributes.get("leadrelay.lead_id", "")
    print(
        f"{span.trace_id} {span.span_id} <- {span.parent_span_id or '-':16} "
        f"{span.service:24} {span.name:40} {took_ms:8.1f} ms {lead}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("OTLP_PORT", "4318")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="count spans (GET /stats), print none")
    args = parser.parse_args()
    receiver = (
        OtlpReceiver(port=args.port, host=args.host, keep=False)
        if args.quiet
        else OtlpReceiver(port=args.port, host=args.host, on_span=_print)
    )
    print(f"OTLP/HTTP traces on {receiver.endpoint}/v1/traces", flush=True)
    uvicorn.run(receiver.app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
