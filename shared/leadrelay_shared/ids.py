"""Name-based UUIDs (version 5, RFC 9562) under a fixed namespace, the same as ``uuid.uuid5``
gives, for the ids intake derives on every item: the lead's from its email, an event's from its
idempotency key. ``uuid.uuid5`` hashes the namespace again on every call and then checks its
arguments; here the namespace is hashed once.
"""

from __future__ import annotations

import hashlib
import uuid

_VERSION_5 = (5 << 76) | (0b10 << 62)  # version 5, RFC 4122 variant
_CLEAR = ((1 << 128) - 1) ^ ((0xF << 76) | (0b11 << 62))


class NameBasedIds:
    def __init__(self, namespace: uuid.UUID) -> None:
        self._prefix = hashlib.sha1(namespace.bytes, usedforsecurity=False)

    def _int(self, name: str) -> int:
        digest = self._prefix.copy()
        digest.update(name.encode())
        return int.from_bytes(digest.digest()[:16]) & _CLEAR | _VERSION_5

    def uuid(self, name: str) -> uuid.UUID:
        """``uuid.uuid5(namespace, name)``."""
        return uuid.UUID(int=self._int(name))

    def text(self, name: str) -> str:
        """``str(uuid.uuid5(namespace, name))``, without building the UUID."""
        x = f"{self._int(name):032x}"
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
