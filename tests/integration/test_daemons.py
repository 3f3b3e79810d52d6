"""The console scripts start real daemons: the engine on Postgres, the agent on JSON-RPC."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import jsonrpcclient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def daemon(*args: str, admin: str = "") -> AsyncIterator[asyncio.subprocess.Process]:
    env = {**os.environ, "ENGINE_ADMIN_PASSWORD": admin} if admin else None
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", *args, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)


async def _get_when_up(session: aiohttp.ClientSession, method: str, url: str, **kw: object) -> aiohttp.ClientResponse:
    for _ in range(100):
        try:
            return await session.request(method, url, **kw)  # type: ignore[arg-type]
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


async def test_engine_serves_health_from_its_database(database_url: str) -> None:
    port = _free_port()
    async with (
        daemon("engine", "--listen", f"127.0.0.1:{port}", "--database-url", database_url, admin="x"),
        aiohttp.ClientSession() as http,
    ):
        resp = await _get_when_up(http, "GET", f"http://127.0.0.1:{port}/health")
        assert resp.status == 200
        body = await resp.json()
        assert body["status"] == "ok"
        assert body["database"].startswith("PostgreSQL 15")


async def test_engine_without_a_database_says_so() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        "--listen",
        "127.0.0.1:1",
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"no database" in err


async def test_agent_answers_ping_over_jsonrpc() -> None:
    port = _free_port()
    async with (
        daemon("vdsm_agent", "--listen", f"127.0.0.1:{port}"),
        aiohttp.ClientSession() as http,
    ):
        resp = await _get_when_up(
            http,
            "POST",
            f"http://127.0.0.1:{port}/jsonrpc",
            json=jsonrpcclient.request("Host.ping"),
        )
        assert isinstance(jsonrpcclient.parse(await resp.json()), jsonrpcclient.Ok)
