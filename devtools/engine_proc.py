"""Start a real engine process and talk to its REST API as an oVirt client does (tests, make run)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from devtools import tls
from devtools.agent_proc import free_port
from engine.api.paths import API, TOKEN_PATH

# Every password given to an engine and every token it issued to these clients: the test suite
# checks at its end that none of them appears in any log (tests/conftest.py).
SECRETS: set[str] = set()


@dataclass
class EngineClient:
    base: str  # http://127.0.0.1:PORT
    session: aiohttp.ClientSession
    token: str = ""
    pid: int = 0  # the engine process, when this client started it

    async def login(self, username: str = "admin@internal", password: str = "") -> str:
        form = {"grant_type": "password", "scope": "ovirt-app-api", "username": username, "password": password}
        async with self.session.post(self.base + TOKEN_PATH, data=form) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise AssertionError(f"login failed: {resp.status} {body}")
        self.token = str(body["access_token"])
        SECRETS.update({password, self.token})
        return self.token

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}  # the engine answers XML unless asked, as oVirt
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.base + (path if path.startswith(("/ovirt-engine", "/api", "/health")) else API + path)
        async with self.session.request(method, url, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def ok(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        got, answer = await self.request(method, path, body)
        expected = status or (201 if method == "POST" and path.rsplit("/", 1)[-1] not in _ACTIONS else 200)
        assert got == expected, f"{method} {path} -> {got} {answer}"
        return answer

    async def fault(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        got, answer = await self.request(method, path, body)
        assert got >= 400, f"{method} {path} unexpectedly succeeded: {got} {answer}"
        return got, answer


_ACTIONS = {"start", "stop", "activate", "deactivate"}


@asynccontextmanager
async def run_engine(log_dir: Path, database_url: str, password: str, **settings: str) -> AsyncIterator[EngineClient]:
    """An engine on a free loopback port, logged in as admin@internal."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, **tls.ensure().engine_env(), "ENGINE_ADMIN_PASSWORD": password,
           **{f"ENGINE_{k.upper()}": v for k, v in settings.items()}}  # fmt: skip
    log = log_dir / f"engine-{port}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "--listen", f"127.0.0.1:{port}", "--database-url", database_url,
            stderr=out, env=env,
        )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        client = EngineClient(f"http://127.0.0.1:{port}", session, pid=proc.pid)
        try:
            for _ in range(150):
                try:
                    async with session.get(client.base + "/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.returncode is None, f"engine exited: {log.read_text()}"
                await asyncio.sleep(0.1)
            await client.login(password=password)
            yield client
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 15)
