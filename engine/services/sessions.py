"""Log in and recognise API tokens: oVirt's two internal users and database-held sessions.

``admin@internal`` may change things; ``readonly@internal`` (when a password is configured
for it) may only read.  Tokens live in the database so that every engine process accepts them.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.services.context import Context
from engine.services.views import Caller
from engine.settings import EngineSettings

ADMIN, READONLY = "admin@internal", "readonly@internal"


@dataclass(frozen=True)
class Session:
    token: str
    caller: Caller
    expires_at: datetime


def _role(settings: EngineSettings, username: str, password: str) -> str | None:
    accounts = {ADMIN: (settings.admin_password, "admin"), READONLY: (settings.readonly_password, "readonly")}
    expected, role = accounts.get(username, ("", ""))
    if expected and hmac.compare_digest(expected.encode(), password.encode()):
        return role
    return None


async def log_in(ctx: Context, settings: EngineSettings, username: str, password: str) -> Session | None:
    """A new session for the right password, else None."""
    role = _role(settings, username, password)
    if role is None:
        return None
    session = Session(
        secrets.token_urlsafe(32), Caller(username, role), datetime.now(UTC) + timedelta(seconds=settings.token_ttl)
    )
    async with ctx.transaction() as repo:
        await repo.add_session(session.token, username, role, session.expires_at)
    return session


async def caller(ctx: Context, token: str) -> Caller | None:
    """Who holds this token, or None for an unknown or expired one."""
    async with ctx.transaction() as repo:
        found = await repo.session(token)
    return Caller(*found) if found else None


async def log_out(ctx: Context, token: str) -> None:
    async with ctx.transaction() as repo:
        await repo.delete_session(token)
