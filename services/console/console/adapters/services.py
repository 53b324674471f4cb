"""The other services' operator APIs, as the console calls them: one HTTP client per service
with its token. A failure becomes ``UpstreamError`` with what the service said."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import UpstreamError
from ..settings import ConsoleSettings

SERVICES = ("scoring", "router", "sla", "analytics")


def segment(value: str) -> str:
    """``value`` as one segment of a service's path, whatever it holds (``/``, ``..``)."""
    return quote(value, safe="")


class Upstream:
    def __init__(
        self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None
    ):
        self._what_if_timeout = settings.what_if_timeout_s
        self._clients = {
            name: httpx.AsyncClient(
                base_url=getattr(settings, f"{name}_url"),
                headers={
                    "Authorization": "Bearer "
                    + getattr(settings, f"{name}_token").get_secret_value()
                },
                timeout=settings.upstream_timeout_s,
                transport=transport,
            )
            for name in SERVICES
        }

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def get(self, service: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        return await self._call(service, "GET", path, params=clean)

    async def get_or_none(self, service: str, path: str) -> Any:
        """The answer, or None when the service has nothing there (404)."""
        try:
            return await self.get(service, path)
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise

    async def send(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: str | None = None,
        params: Mapping[str, Any] | None = None,
        long: bool = False,
    ) -> Any:
        """A change or a computation; ``long`` for a what-if, which may take minutes."""
        return await self._call(
            service,
            method,
            path,
            json=json,
            content=content,
            params=params,
            timeout=self._what_if_timeout if long else httpx.USE_CLIENT_DEFAULT,
        )

    async def _call(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        if "content" in kwargs and kwargs["content"] is not None:
            kwargs["headers"] = {"Content-Type": "application/yaml"}
        try:
            resp = await self._clients[service].request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamError(
                service, None, f"{service} did not answer ({type(exc).__name__})"
            ) from exc
        if resp.is_success:
            return resp.json()
        raise UpstreamError(service, resp.status_code, _detail(resp))


def _detail(resp: httpx.Response) -> str:
    """What a problem document says, field by field when it names fields."""
    try:
        body = resp.json()
    except ValueError:
        return f"answered {resp.status_code}"
    if not isinstance(body, dict):
        return f"answered {resp.status_code}"
    errors = body.get("errors") or []
    named = "; ".join(
        f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
        for e in errors
        if isinstance(e, dict)
    )
    return named or str(body.get("detail") or body.get("title") or f"answered {resp.status_code}")
