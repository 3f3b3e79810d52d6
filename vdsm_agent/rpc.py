"""The JSON-RPC face of the agent: method names as VDSM names them, dispatched explicitly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from jsonrpcserver import Result, Success, async_dispatch

Method = Callable[..., Awaitable[Result]]


async def ping() -> Result:
    return Success(True)


def methods() -> dict[str, Method]:
    return {"Host.ping": ping}


async def dispatch(body: str, table: dict[str, Method]) -> str:
    response: Any = await async_dispatch(body, methods=table)
    return str(response)
