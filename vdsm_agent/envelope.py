"""The JSON-RPC 2.0 envelope: from a request body to the answer the agent sends back.

jsonrpcserver validates each request object and calls its method; this module decides what a
body is before that, where jsonrpcserver 5's own defaults fall short of the specification:

- The body is JSON (RFC 8259): UTF-8 whatever the Content-Type claims, no ``NaN`` /
  ``Infinity`` (nor a number too large for a float), nested at most :data:`MAX_DEPTH` levels.
  Anything else is a parse error (-32700), so an answer is always JSON and never echoes a value
  JSON cannot carry (``"id": NaN``).
- A batch is answered member by member, as the specification's examples show (``[1, 2]`` gets
  two -32600 errors, a valid call beside an invalid one still runs), one member after another so
  that a batch takes one call's share of the agent at a time.  An empty batch, or one of more
  than :data:`MAX_BATCH` members, is one -32600 error.
- Notifications (no ``id``) get no answer: an empty string, which the HTTP face sends as 204.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from jsonrpcserver.async_main import dispatch_to_serializable

Method = Callable[..., Awaitable[Any]]

MAX_DEPTH = 64  # levels of arrays and objects; the deepest real request (VM.create's NIC bandwidth) has 6
MAX_BATCH = 100  # requests in one batch; the engine sends none (its calls are single)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def _depth_within(value: Any, limit: int) -> bool:
    """True when ``value`` nests at most ``limit`` arrays and objects (iteratively: no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return False
        pending.extend((child, depth + 1) for child in children)
    return True


def parse(body: str | bytes) -> Any:
    """The body as JSON, or ValueError saying why it is not (a parse error)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # the decoder's own limit, far beyond MAX_DEPTH
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    if not _depth_within(value, MAX_DEPTH):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def error(code: int, message: str, data: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data}, "id": None}


_MEMBERS = frozenset({"jsonrpc", "method", "params", "id"})


def validate(request: Any) -> Any:
    """JSON-RPC 2.0's request schema, the one jsonrpcserver checks with jsonschema — in plain
    Python, at a tenth of the cost per call (any exception is an invalid request to it)."""
    if not isinstance(request, dict) or not request.keys() <= _MEMBERS:
        raise ValueError("a request is an object of jsonrpc, method, params and id")
    if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        raise ValueError('a request needs "jsonrpc": "2.0" and a method name')
    if "params" in request and not isinstance(request["params"], dict | list):
        raise ValueError("params are an object or an array")
    if "id" in request and (isinstance(request["id"], bool) or not isinstance(request["id"], str | int | float | None)):
        raise ValueError("an id is a string, a number or null")
    return request


async def _one(request: Any, table: dict[str, Method]) -> Any:
    """jsonrpcserver's answer to one request (None for a notification)."""
    return await dispatch_to_serializable("", methods=table, deserializer=lambda _: request, validator=validate)


async def _member(request: Any, table: dict[str, Method]) -> Any:
    """The answer to one member of a batch: a request object, never a batch of its own."""
    if not isinstance(request, dict):
        return error(INVALID_REQUEST, "Invalid request", "a batch member must be a request object")
    return await _one(request, table)


async def answer(body: str | bytes, table: dict[str, Method]) -> str:
    """The JSON text answering ``body`` ('' when nothing is to be said: notifications only)."""
    try:
        request = parse(body)
    except ValueError as exc:
        return json.dumps(error(PARSE_ERROR, "Parse error", str(exc)))
    if isinstance(request, list) and len(request) > MAX_BATCH:
        why = f"a batch holds at most {MAX_BATCH} requests, got {len(request)}"
        return json.dumps(error(INVALID_REQUEST, "Invalid request", why))
    if isinstance(request, list) and request:
        answers = [a for a in [await _member(member, table) for member in request] if a is not None]
        return json.dumps(answers, allow_nan=False) if answers else ""
    single = await _one(request, table)  # an empty batch too: jsonrpcserver calls it invalid
    return "" if single is None else json.dumps(single, allow_nan=False)
