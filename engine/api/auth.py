"""Authentication as oVirt clients expect it: an SSO token, then ``Authorization: Bearer``.

``POST /ovirt-engine/sso/oauth/token`` with ``grant_type=password``, ``scope``, ``username``
and ``password`` returns ``{"access_token": ..., "token_type": "bearer", "exp": ...}``.  Two
users: ``admin@internal`` (may change things) and, when a password is configured for it,
``readonly@internal`` (may only read).  Tokens live in the database so that every engine
process accepts them.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp.typedefs import Handler

from engine.adapters.repository import Repository
from engine.api.keys import POOL, SETTINGS
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.settings import EngineSettings

TOKEN_PATH = "/ovirt-engine/sso/oauth/token"
ADMIN, READONLY = "admin@internal", "readonly@internal"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC = ("/health", TOKEN_PATH, "/ovirt-engine/api/openapi.json", "/api/openapi.json")


def _role(settings: EngineSettings, username: str, password: str) -> str | None:
    accounts = {ADMIN: (settings.admin_password, "admin"), READONLY: (settings.readonly_password, "readonly")}
    expected, role = accounts.get(username, ("", ""))
    if expected and hmac.compare_digest(expected.encode(), password.encode()):
        return role
    return None


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def token(request: web.Request) -> web.Response:

    form = dict(await request.post()) if request.content_type != "application/json" else await request.json()
    if not isinstance(form, dict):
        return _oauth_error(400, "invalid_request", "send the token request as a form or a JSON object")
    if form.get("grant_type") != "password":
        return _oauth_error(400, "unsupported_grant_type", "only grant_type=password is supported")
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    role = _role(request.app[SETTINGS], username, password)
    if role is None:
        return _oauth_error(401, "access_denied", "Cannot authenticate user: wrong username or password")
    ttl = request.app[SETTINGS].token_ttl
    value = secrets.token_urlsafe(32)
    async with request.app[POOL].acquire() as conn:
        await Repository(conn).add_session(value, username, role, datetime.now(UTC) + timedelta(seconds=ttl))
    return web.json_response(
        {
            "access_token": value,
            "token_type": "bearer",
            "scope": form.get("scope", "ovirt-app-api"),
            "exp": str(int((time.time() + ttl) * 1000)),
        }
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:

    if request.path in _PUBLIC or not request.path.startswith(("/ovirt-engine/api", "/api")):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise EngineError(
            errors.UNAUTHORIZED, f"log in first: POST {TOKEN_PATH}, then send Authorization: Bearer <token>"
        )
    async with request.app[POOL].acquire() as conn:
        session = await Repository(conn).session(header[7:].strip())
    if session is None:
        raise EngineError(errors.UNAUTHORIZED, "the token is unknown or has expired; log in again")
    user, role = session
    if role != "admin" and request.method not in _READ_METHODS:
        raise EngineError(errors.FORBIDDEN, f"user {user} may read but not change anything")
    request["user"], request["role"] = user, role
    return await handler(request)
