"""Log in, out, and recognise API tokens: oVirt's two internal users and database-held sessions.

``admin@internal`` may change things; ``readonly@internal`` (when a password is configured
for it) may only read.  Their passwords reach the engine in its settings and are kept only as
scrypt hashes (``api_users``); tokens are kept only as digests (``api_sessions``), expire after
``token_ttl`` and are revoked by logging out.  Failed logins are counted per user name and per
client address (``login_failures``, shared by every engine process): past ``login_attempts``
in ``login_window`` seconds both are locked for a while that doubles with each further failure,
answered 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.domain import secrets
from engine.services.context import Context
from engine.services.views import Caller
from engine.settings import EngineSettings

ADMIN, READONLY = "admin@internal", "readonly@internal"


@dataclass(frozen=True)
class Session:
    token: str  # given to the client once; the database keeps its digest
    caller: Caller
    expires_at: datetime


@dataclass(frozen=True)
class Throttled:
    retry_after: int  # seconds


async def sync_users(ctx: Context, settings: EngineSettings) -> None:
    """Store the configured passwords' hashes (at start); a password unchanged keeps its hash."""
    accounts = {ADMIN: (settings.admin_password, "admin"), READONLY: (settings.readonly_password, "readonly")}
    async with ctx.transaction() as repo:
        for name, (password, role) in accounts.items():
            if not password:
                await repo.delete_user(name)
                continue
            stored = await repo.user_hash(name)
            if stored is None or not await asyncio.to_thread(secrets.verify_password, password, stored):
                await repo.set_user(name, role, await asyncio.to_thread(secrets.hash_password, password))


async def log_in(
    ctx: Context, settings: EngineSettings, username: str, password: str, client: str
) -> Session | Throttled | None:
    """A new session for the right password; Throttled while the user or address is locked;
    None for a wrong user name or password."""
    keys = [f"user:{username}"[:200], f"addr:{client}"]
    now = datetime.now(UTC)
    async with ctx.transaction() as repo:
        locked = [until for until in await repo.locked_until(keys) if until and until > now]
        if locked:
            return Throttled(max(1, int((max(locked) - now).total_seconds() + 0.999)))
        user = await repo.user(username)
    stored = user[1] if user else secrets.UNKNOWN_USER
    if not await asyncio.to_thread(secrets.verify_password, password, stored) or user is None:
        async with ctx.transaction() as repo:
            for key in keys:
                failures = await repo.count_failure(key, settings.login_window)
                until = secrets.lock_after(failures, settings.login_attempts, settings.login_lock_max, now)
                if until is not None:
                    await repo.lock(key, until)
        return None
    token, digest = secrets.new_token()
    session = Session(token, Caller(username, user[0]), now + timedelta(seconds=settings.token_ttl))
    async with ctx.transaction() as repo:
        await repo.clear_failures(keys)
        await repo.add_session(digest, username, user[0], session.expires_at)
    return session


async def caller(ctx: Context, token: str) -> Caller | None:
    """Who holds this token, or None for an unknown, revoked or expired one."""
    async with ctx.one_statement() as repo:  # every request asks: one round trip
        found = await repo.session(secrets.token_digest(token))
    return Caller(*found) if found else None


async def log_out(ctx: Context, token: str) -> None:
    async with ctx.transaction() as repo:
        await repo.delete_session(secrets.token_digest(token))
