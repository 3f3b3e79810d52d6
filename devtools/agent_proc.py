"""Start a real vdsm-agent process and talk JSON-RPC to it, as the engine does (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonrpcclient

from devtools import guest, tls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AgentClient:
    url: str
    session: aiohttp.ClientSession
    process: asyncio.subprocess.Process
    log: Path

    async def call(self, method: str, **params: Any) -> jsonrpcclient.Ok | jsonrpcclient.Error:
        async with self.session.post(self.url, json=jsonrpcclient.request(method, params=params)) as resp:
            return jsonrpcclient.parse(await resp.json())

    async def ok(self, method: str, **params: Any) -> Any:
        answer = await self.call(method, **params)
        assert isinstance(answer, jsonrpcclient.Ok), f"{method} failed: {answer}"
        return answer.result

    async def error(self, method: str, **params: Any) -> jsonrpcclient.Error:
        answer = await self.call(method, **params)
        assert isinstance(answer, jsonrpcclient.Error), f"{method} unexpectedly succeeded: {answer}"
        return answer

    async def post_raw(self, body: bytes) -> dict[str, Any]:
        async with self.session.post(self.url, data=body, headers={"Content-Type": "application/json"}) as resp:
            result: dict[str, Any] = await resp.json()
            return result


@asynccontextmanager
async def run_agent(log_dir: Path, port: int | None = None, **settings: str) -> AsyncIterator[AgentClient]:
    """An agent on a loopback port (a free one unless given); ``settings`` become VDSM_AGENT_* variables."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    run_pki = tls.ensure()  # mutual TLS, as deployed: the agent's certificate and the run's CA
    env = {**os.environ, **run_pki.agent_env(), **guest.agent_env(),
           **{f"VDSM_AGENT_{k.upper()}": v for k, v in settings.items()}}  # fmt: skip
    log = log_dir / f"agent-{port}.log"
    with log.open("ab") as out:  # appended: an agent restarted on its port keeps one log
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "vdsm_agent", "--listen", f"127.0.0.1:{port}", stderr=out, env=env
        )
    url = f"https://127.0.0.1:{port}/jsonrpc"
    # The tests call the agent as the engine does: with the engine's certificate.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=run_pki.client_context())) as session:
        client = AgentClient(url, session, proc, log)
        try:
            for _ in range(100):
                try:
                    await client.ok("Host.ping")
                    break
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None, f"agent exited: {log.read_text()}"
                    await asyncio.sleep(0.1)
            yield client
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 15)
