"""The console scripts start real daemons: the engine on Postgres, the agent on JSON-RPC over
mutual TLS; each refuses to start without what it needs to be secure, unless told it is a lab."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import jsonrpcclient
import pytest

from devtools import tls


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def daemon(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})}
    )
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


async def _exits(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", *args, stderr=asyncio.subprocess.PIPE, env=env)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, err.decode()


async def test_engine_serves_health_from_its_database(database_url: str) -> None:
    port = _free_port()
    env = {**tls.ensure().engine_env(), "ENGINE_ADMIN_PASSWORD": "x"}
    async with (
        daemon("engine", "--listen", f"127.0.0.1:{port}", "--database-url", database_url, env=env),
        aiohttp.ClientSession() as http,
    ):
        resp = await _get_when_up(http, "GET", f"http://127.0.0.1:{port}/health")
        assert resp.status == 200
        body = await resp.json()
        assert body["status"] == "ok"
        assert body["database"].startswith("PostgreSQL 15")
        # Where the time went, for browsers' developer tools and make bench (engine/timing.py).
        phases = dict(p.strip().split(";dur=") for p in resp.headers["Server-Timing"].split(","))
        assert {"db", "app"} <= set(phases) and 0 < float(phases["db"]) <= float(phases["app"])


async def test_engine_serves_https_with_the_deployments_certificate(database_url: str) -> None:
    run = tls.ensure()
    cert, key = run.cert("engine")
    port = _free_port()
    env = {**run.engine_env(), "ENGINE_ADMIN_PASSWORD": "x"}
    args = ("engine", "--listen", f"127.0.0.1:{port}", "--database-url", database_url, "--tls-cert", str(cert),
            "--tls-key", str(key))  # fmt: skip
    trusting = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(run.ca)))
    async with daemon(*args, env=env), aiohttp.ClientSession(connector=trusting) as http:
        resp = await _get_when_up(http, "GET", f"https://127.0.0.1:{port}/health")
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/health") as plain:
                await plain.read()


async def test_engine_without_a_database_says_so() -> None:
    code, err = await _exits("engine", "--listen", "127.0.0.1:1", env={"PATH": "/usr/bin:/bin"})
    assert code == 2 and "no database" in err


async def test_engine_without_a_certificate_for_the_agents_refuses_to_start(database_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "ENGINE_ADMIN_PASSWORD": "x", "DATABASE_URL": database_url}
    code, err = await _exits("engine", "--listen", "127.0.0.1:1", env=env)
    assert code == 2 and "engine pki issue-engine" in err and "insecure_agents" in err


async def test_agent_answers_the_engine_over_mutual_tls_only() -> None:
    run = tls.ensure()
    port = _free_port()
    url = f"https://127.0.0.1:{port}/jsonrpc"
    async with daemon("vdsm_agent", "--listen", f"127.0.0.1:{port}", env=run.agent_env()):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=run.client_context())) as engine:
            resp = await _get_when_up(engine, "POST", url, json=jsonrpcclient.request("Host.ping"))
            assert isinstance(jsonrpcclient.parse(await resp.json()), jsonrpcclient.Ok)
        # Trusting the agent but presenting no certificate: the handshake is refused.
        anonymous = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(run.ca)))
        async with aiohttp.ClientSession(connector=anonymous) as stranger:
            with pytest.raises(aiohttp.ClientError):
                async with stranger.post(url, json=jsonrpcclient.request("Host.ping")) as refused:
                    await refused.read()
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                async with plain.post(url.replace("https", "http"), json=jsonrpcclient.request("Host.ping")) as r:
                    await r.read()


async def test_agent_without_its_certificate_refuses_to_start_unless_insecure(tmp_path: Path) -> None:
    missing = {"PATH": "/usr/bin:/bin", "VDSM_AGENT_TLS_CERT": str(tmp_path / "agent.pem")}
    code, err = await _exits("vdsm_agent", "--listen", "127.0.0.1:1", env=missing)
    assert code == 2 and "engine pki issue-host" in err and "--insecure" in err

    port = _free_port()
    async with (
        daemon("vdsm_agent", "--listen", f"127.0.0.1:{port}", "--insecure", env=missing) as proc,
        aiohttp.ClientSession() as http,
    ):
        resp = await _get_when_up(http, "POST", f"http://127.0.0.1:{port}/jsonrpc",
                                  json=jsonrpcclient.request("Host.ping"))  # fmt: skip
        assert isinstance(jsonrpcclient.parse(await resp.json()), jsonrpcclient.Ok)
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        assert b"--insecure: serving plain HTTP" in await proc.stderr.read()
