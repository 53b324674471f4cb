"""The end-to-end benchmark's webhook receiver, in a process of its own: it records when each
routed lead's ``lead.assigned`` webhook arrived (wall clock, the same clock the load generator
stamps intake's ``202`` with) and answers ``204`` at once.

``GET /received`` returns ``{"<lead_id>": <first arrival, epoch seconds>, ...}`` and
``{"deliveries": n}`` counts every POST (retries and duplicates included).
"""

from __future__ import annotations

import json
import sys
import time

import uvicorn

arrivals: dict[str, float] = {}
deliveries = 0


async def _body(receive) -> bytes:  # type: ignore[no-untyped-def]
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _reply(send, status: int, body: bytes = b"") -> None:  # type: ignore[no-untyped-def]
    headers = [(b"content-type", b"application/json")] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    global deliveries
    if scope["type"] != "http":
        return
    body = await _body(receive)
    if scope["method"] == "POST":
        at = time.time()
        deliveries += 1
        try:
            lead_id = json.loads(body)["data"]["lead_id"]
        except (ValueError, KeyError, TypeError):
            await _reply(send, 400)
            return
        arrivals.setdefault(lead_id, at)
        await _reply(send, 204)
    elif scope["path"] == "/received":
        await _reply(
            send, 200, json.dumps({"arrivals": arrivals, "deliveries": deliveries}).encode()
        )
    else:
        await _reply(send, 200, b'{"status": "ready"}')


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
