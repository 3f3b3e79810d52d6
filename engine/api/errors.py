"""Errors become oVirt faults in one place: ``{"reason": ..., "detail": ..., "code": ...}``."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from engine.domain.errors import EngineError

log = logging.getLogger(__name__)


def fault(status: int, reason: str, detail: str, code: str, data: dict[str, object] | None = None) -> web.Response:
    body = {"reason": reason, "detail": detail, "code": code}
    if data:
        body["data"] = data  # type: ignore[assignment]
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EngineError as exc:
        if exc.kind.status >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        return fault(exc.kind.status, exc.kind.reason, exc.detail, exc.kind.name, exc.data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return fault(400, "Invalid request", f"the body is not valid JSON: {exc}", "INVALID_REQUEST")
    except web.HTTPException as exc:
        if exc.status in (404, 405):
            return fault(exc.status, "Not found" if exc.status == 404 else "Method not allowed",
                         f"{request.method} {request.path} is not part of the API",
                         "NOT_FOUND" if exc.status == 404 else "METHOD_NOT_ALLOWED")  # fmt: skip
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return fault(500, "Internal error", "the engine failed unexpectedly; see its log", "INTERNAL_ERROR")
