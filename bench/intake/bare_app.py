"""The framework's ceiling: a FastAPI endpoint on the same path that does no work at all, served
by the same uvicorn (uvloop, httptools, one worker, no access log) as intake."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/events", status_code=202)
async def accept() -> dict[str, str]:
    return {"status": "accepted"}


@app.post("/v1/events:batch")
async def accept_batch() -> dict[str, str]:
    return {"status": "accepted"}


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
