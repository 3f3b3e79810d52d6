"""Errors become oVirt faults in one place: ``<fault><reason/><detail/></fault>`` (or its JSON,
``{"reason", "detail", "code", "data"}``), in the format the client asked for."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from engine.api.formats import MAX_BODY, Reply, render
from engine.domain.errors import EngineError

log = logging.getLogger(__name__)


def fault(
    request: web.Request, status: int, reason: str, detail: str, code: str, data: dict[str, object] | None = None
) -> web.Response:
    body: dict[str, object] = {"reason": reason, "detail": detail, "code": code}
    if data:
        body["data"] = data
    return render(request, Reply("fault", body, status))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EngineError as exc:
        if exc.kind.status >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        return fault(request, exc.kind.status, exc.kind.reason, exc.detail, exc.kind.name, exc.data)
    except web.HTTPRequestEntityTooLarge:
        return fault(request, 413, "Invalid request", f"the body is larger than {MAX_BODY // 1024} KiB", "TOO_LARGE")
    except web.HTTPMethodNotAllowed as exc:
        answer = fault(request, 405, "Method not allowed", f"{request.method} {request.path} is not part of the API",
                       "METHOD_NOT_ALLOWED")  # fmt: skip
        answer.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return answer
    except web.HTTPNotFound:
        return fault(request, 404, "Not found", f"{request.method} {request.path} is not part of the API", "NOT_FOUND")
    except web.HTTPException:
        raise  # redirects and the like: aiohttp's own answers
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return fault(request, 500, "Internal error", "the engine failed unexpectedly; see its log", "INTERNAL_ERROR")
