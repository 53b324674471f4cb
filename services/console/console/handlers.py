"""What changes the console's own state: accounts and sign-ins."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .domain import Role, User, check_account


class Users(Protocol):
    async def get(self, username: str) -> dict[str, Any] | None: ...
    async def put(self, username: str, password_hash: str, role: str, now: datetime) -> bool: ...
    async def signed_in(self, username: str, now: datetime, new_hash: str | None) -> None: ...


async def create_user(
    users: Users, hasher: PasswordHasher, username: str, password: str, role: Role, now: datetime
) -> bool:
    """Create the account, or set a new password and role; True when it was new."""
    check_account(username, password)
    return await users.put(username, hasher.hash(password), role.value, now)


async def sign_in(
    users: Users, hasher: PasswordHasher, username: str, password: str, now: datetime
) -> User | None:
    """The account when the password is right; its hash is renewed when its parameters aged.
    An unknown name costs as much as a wrong password, so timing tells no names apart."""
    account = await users.get(username)
    stored = account["password_hash"] if account else _DECOY
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if account is None:
        return None
    renewed = hasher.hash(password) if hasher.check_needs_rehash(stored) else None
    await users.signed_in(username, now, renewed)
    return User(account["username"], Role(account["role"]))


_DECOY = PasswordHasher().hash("an account that does not exist")
