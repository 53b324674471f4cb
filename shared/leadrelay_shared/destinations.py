"""Where webhooks and alerts may go. A routing file or an admin call names URLs that router and
sla-monitor then call from inside the network; outside development they must be ``https``, and
loopback, private, link-local and other special addresses are refused unless a setting allows
them. Checked when a configuration is loaded (``refusal``) and again at delivery time against
the address a name resolves to (``GuardedResolver``), so a name that later points inside is
refused too. Their signing secrets, outside development, are given by reference only
(``refused_secrets``), so that no stored configuration version holds one in clear."""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .settings import ServiceSettings


def inside(address: str) -> bool:
    """Loopback, private, link-local, or otherwise not a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class Destinations:
    https_only: bool
    allow_inside: bool
    clear_secrets: bool = True  # a rules file may hold a secret in clear (development)

    @classmethod
    def of(cls, settings: ServiceSettings) -> Destinations:
        """Development calls anything (the demo receiver is on this host); elsewhere only
        public ``https`` URLs, unless ``allow_private_destinations`` says so."""
        development = settings.environment == "development"
        allow = getattr(settings, "allow_private_destinations", None)
        return cls(
            https_only=not development,
            allow_inside=development if allow is None else allow,
            clear_secrets=development,
        )

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be called, or None."""
        parts = urlsplit(url)
        if self.https_only and parts.scheme != "https":
            return f"{url}: only https outside development"
        host = parts.hostname or ""
        if self.allow_inside:
            return None
        try:
            refused = inside(host)
        except ValueError:  # a name: checked against its addresses when it is called
            return None
        return f"{url}: {host} is not a public address" if refused else None


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses ``Destinations`` allows: a connection is
    made only to an address that was checked."""

    def __init__(self, destinations: Destinations) -> None:
        self._inner = DefaultResolver()
        self._destinations = destinations

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if self._destinations.allow_inside:
            return found
        kept = [r for r in found if not inside(r["host"])]
        if not kept:
            # errno and message both: aiohttp's connection error shows the message as strerror
            raise OSError(errno.EACCES, f"{host} resolves only to addresses that are not public")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def refused_urls(urls: dict[str, str], destinations: Destinations) -> list[str]:
    """Each ``field: reason`` for the URLs (by field) that may not be called."""
    return [f"{field}: {why}" for field, url in urls.items() if (why := destinations.refusal(url))]


def refused_secrets(secrets: dict[str, object], destinations: Destinations) -> list[str]:
    """Each ``field: reason`` for the secrets (by field) given in clear where only references
    may be: a rules file kept in git, and each stored version of it, would hold them."""
    if destinations.clear_secrets:
        return []
    return [
        f"{field}: give it as {{env: NAME}} or {{file: PATH}} outside development"
        for field, value in secrets.items()
        if isinstance(value, str)
    ]


__all__ = ["Destinations", "GuardedResolver", "inside", "refused_secrets", "refused_urls"]
