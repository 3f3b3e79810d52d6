"""Authentication as oVirt clients expect it: an SSO token, then ``Authorization: Bearer``.

``POST /ovirt-engine/sso/oauth/token`` with ``grant_type=password``, ``scope``, ``username``
and ``password`` returns ``{"access_token": ..., "token_type": "bearer", "exp": ...}``, or
``{"error": ..., "error_description": ...}`` (the oVirt SDK raises AuthError from it);
``POST /ovirt-engine/services/sso-logout`` with ``token`` revokes it.  Both answer JSON, as
oVirt's SSO does.  The users and tokens are the sessions service's
(``engine/services/sessions.py``).  The middleware lets a read-only caller read and nothing more.
"""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.typedefs import Handler

from engine.api.keys import CALLER, CONTEXT, SETTINGS
from engine.api.paths import HEALTH, LOGOUT_PATH, OPENAPI, PREFIXES, TOKEN_PATH, is_api
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.limits import refuse_text
from engine.services import sessions

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC = frozenset({HEALTH, TOKEN_PATH, LOGOUT_PATH, *(p + OPENAPI for p in PREFIXES)})
_FIELDS = frozenset({"grant_type", "scope", "username", "password", "token"})  # what the SSO reads


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def _form(request: web.Request) -> dict[str, str] | str:
    """An SSO request's fields, from a form or a JSON object; or why they cannot be read."""
    try:
        if request.content_type == "application/json":
            form = json.loads(await request.read())
        else:
            form = dict(await request.post())
    except (ValueError, KeyError, AssertionError, RecursionError):  # bad JSON, a multipart without boundary
        form = None
    if not isinstance(form, dict):
        return "send the request as a form or a JSON object"
    for key, value in form.items():
        if key in _FIELDS and not isinstance(value, str):
            return f"{key} must be text"
        refusal = refuse_text(key, value) if isinstance(value, str) else None
        if refusal is not None:
            return refusal.detail
    return {k: v for k, v in form.items() if k in _FIELDS}


async def token(request: web.Request) -> web.Response:
    form = await _form(request)
    if isinstance(form, str):
        return _oauth_error(400, "invalid_request", form)
    if form.get("grant_type") != "password":
        return _oauth_error(400, "unsupported_grant_type", "only grant_type=password is supported")
    username, password = form.get("username", ""), form.get("password", "")
    client = request.remote or "unknown"
    session = await sessions.log_in(request.app[CONTEXT], request.app[SETTINGS], username, password, client)
    if isinstance(session, sessions.Throttled):
        answer = _oauth_error(429, "access_denied",
                              f"Too many failed logins: try again in {session.retry_after} s")  # fmt: skip
        answer.headers["Retry-After"] = str(session.retry_after)
        return answer
    if session is None:
        return _oauth_error(401, "access_denied", "Cannot authenticate user: wrong username or password")
    return web.json_response(
        {
            "access_token": session.token,
            "token_type": "bearer",
            "scope": form.get("scope", "ovirt-app-api"),
            "exp": str(int(session.expires_at.timestamp() * 1000)),
        }
    )


async def logout(request: web.Request) -> web.Response:
    """Revoke a token (the SDK's ``connection.close()``); revoking an unknown one changes nothing."""
    form = await _form(request)
    if isinstance(form, str):
        return _oauth_error(400, "invalid_request", form)
    if not form.get("token"):
        return _oauth_error(400, "invalid_request", "send the token to revoke as 'token'")
    await sessions.log_out(request.app[CONTEXT], form["token"])
    return web.json_response({})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in _PUBLIC or not is_api(request.path):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise EngineError(
            errors.UNAUTHORIZED, f"log in first: POST {TOKEN_PATH}, then send Authorization: Bearer <token>"
        )
    caller = await sessions.caller(request.app[CONTEXT], header[7:].strip())
    if caller is None:
        raise EngineError(errors.UNAUTHORIZED, "the token is unknown or has expired; log in again")
    if not caller.may_change and request.method not in _READ_METHODS:
        raise EngineError(errors.FORBIDDEN, f"user {caller.user} may read but not change anything")
    request[CALLER] = caller
    return await handler(request)
