"""A small webhook receiver for the demo and the end-to-end tests.

It verifies every request with the official ``standardwebhooks`` library against the secret of
its path, records what arrived, and can be told to fail for a while (to exercise retries).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class InThread:
    """An ASGI app served by uvicorn on a thread of this process (tests and the demo)."""

    server: uvicorn.Server
    thread: threading.Thread

    @classmethod
    def serve(cls, app: Any, host: str, port: int, timeout_s: float = 10) -> InThread:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answers on {host}:{port}")
            time.sleep(0.02)
        return cls(server, thread)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@dataclass
class Received:
    hook: str
    webhook_id: str
    payload: dict[str, Any]
    at: float
    traceparent: str | None = None  # the sender's trace, when it traces


@dataclass
class Receiver:
    secrets: dict[str, str]
    port: int
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # hooks that answer 410 Gone
    on_receive: Any = None
    _served: InThread | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{hook}")
        async def hook(hook: str, request: Request) -> JSONResponse:
            body = await request.body()
            secret = self.secrets.get(hook)
            if secret is None:
                return JSONResponse({"error": "unknown hook"}, status_code=404)
            try:
                payload = Webhook(secret).verify(body, dict(request.headers))
            except WebhookVerificationError as exc:
                self.rejected.append(f"{hook}: {exc}")
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if hook in self.gone:
                return JSONResponse({"error": "gone"}, status_code=410)
            if self.fail_next.get(hook, 0) > 0:
                self.fail_next[hook] -= 1
                return JSONResponse({"error": "induced failure"}, status_code=500)
            item = Received(
                hook,
                request.headers["webhook-id"],
                payload,
                time.time(),
                request.headers.get("traceparent"),
            )
            self.received.append(item)
            if self.on_receive:
                self.on_receive(item)
            return JSONResponse({"ok": True})

        return app

    def start(self) -> None:
        self._served = InThread.serve(self.app(), "127.0.0.1", self.port)

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    def of(self, hook: str, lead_id: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.hook == hook
            and (lead_id is None or r.payload.get("data", {}).get("lead_id") == lead_id)
        ]

    async def wait_for(self, hook: str, lead_id: str, timeout_s: float) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.of(hook, lead_id)
            if found:
                return found
            await asyncio.sleep(0.05)
        return []


def main() -> None:
    """``python -m devstack.receiver``: the receiver on its own, for compose's demo profile:
    it takes the secrets of the routing and SLA files the services are given."""
    from router.settings import RouterSettings
    from sla_monitor.settings import SlaSettings

    from .demo import receiver_secrets

    secrets = receiver_secrets(RouterSettings().config_path, SlaSettings().policies_path)
    receiver = Receiver(secrets=secrets, port=int(os.environ.get("RECEIVER_PORT", "8099")))
    host = os.environ.get("RECEIVER_HOST", "0.0.0.0")
    uvicorn.run(receiver.app(), host=host, port=receiver.port, log_level="info")


if __name__ == "__main__":
    main()
