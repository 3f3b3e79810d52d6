"""The engine's side of the host agents' JSON-RPC: jsonrpcclient over one aiohttp session per host.

A host that cannot be reached, or does not answer in time, raises :class:`HostUnreachable`; an
answer with an error raises :class:`AgentError` with the agent's code (VDSM's table in
``shared_schema.errors``), message and data.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import jsonrpcclient

from engine.domain.model import Host


class HostUnreachable(Exception):
    pass


class AgentError(Exception):
    def __init__(self, code: int, message: str, data: Any):
        self.code = code
        self.message = message
        self.data = data if isinstance(data, dict) else {}
        super().__init__(f"{message} (code {code})")


class AgentClients:
    def __init__(self, timeout: float = 45.0, connect_timeout: float = 5.0):
        # Longer than the agent's own unplug wait (30 s by default), so its answer arrives.
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, host: Host) -> aiohttp.ClientSession:
        key = f"{host.address}:{host.port}"
        session = self._sessions.get(key)
        if session is None or session.closed:
            session = self._sessions[key] = aiohttp.ClientSession(timeout=self._timeout)
        return session

    async def call(self, host: Host, method: str, **params: Any) -> Any:
        url = f"http://{host.address}:{host.port}/jsonrpc"
        try:
            async with self._session(host).post(url, json=jsonrpcclient.request(method, params=params)) as resp:
                body = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise HostUnreachable(
                f"host {host.name} ({host.address}:{host.port}) is not responding: {type(exc).__name__} {exc}".strip()
            ) from None
        try:
            answer = jsonrpcclient.parse(body)
        except (KeyError, TypeError, AttributeError):
            raise HostUnreachable(f"host {host.name} ({host.address}:{host.port}) does not answer JSON-RPC") from None
        if isinstance(answer, jsonrpcclient.Error):
            raise AgentError(answer.code, answer.message, answer.data)
        if not isinstance(answer, jsonrpcclient.Ok):
            raise HostUnreachable(f"host {host.name} sent a batch answer to a single call")
        return answer.result

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
