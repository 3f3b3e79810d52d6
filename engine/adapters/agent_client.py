"""The engine's side of the host agents' JSON-RPC.

:class:`Agent` is the small interface the services use — one typed method per verb, answers
typed by ``shared_schema.answers`` — and :class:`JsonRpcAgents` its real implementation:
jsonrpcclient over one aiohttp session per host.  Tests of the services use a scripted fake
with the same interface (``tests/fakes.py``).

A host that cannot be reached, does not answer in time, or answers something that is not the
verb's answer raises :class:`HostUnreachable`; an error answer raises :class:`AgentError` with
the agent's code (VDSM's table in ``shared_schema.errors``), message and data.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import aiohttp
import jsonrpcclient

from engine.domain.model import Host
from shared_schema import verbs
from shared_schema.answers import HotplugAnswer, PlacedNic, UpdateDeviceAnswer, VmStats, VmStatus, list_of
from shared_schema.device_update import NicUpdate
from shared_schema.errors import ParamError
from shared_schema.nic import NicRef, NicSpec
from shared_schema.tls import read_tls_records_at_a_time
from shared_schema.vm import VmSpec


class HostUnreachable(Exception):
    pass


class AgentError(Exception):
    def __init__(self, code: int, message: str, data: Any):
        self.code = code
        self.message = message
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        super().__init__(f"{message} (code {code})")


class Agent(Protocol):
    """The verbs the engine calls on a host's agent."""

    async def ping(self, host: Host) -> None: ...

    async def create_vm(self, host: Host, spec: VmSpec) -> VmStats: ...

    async def destroy_vm(self, host: Host, vm_id: str) -> None: ...

    async def hotplug_nic(self, host: Host, vm_id: str, nic: NicSpec) -> PlacedNic: ...

    async def hotunplug_nic(self, host: Host, vm_id: str, nic: NicRef) -> None: ...

    async def update_device(self, host: Host, vm_id: str, update: NicUpdate) -> PlacedNic: ...

    async def vm_statuses(self, host: Host, timeout: float) -> list[VmStatus]: ...

    async def vm_full_list(self, host: Host, vm_ids: list[str], timeout: float) -> list[VmStats]: ...

    async def close(self) -> None: ...


PER_HOST = 32  # connections to one host at most: its calls beyond wait for one


class JsonRpcAgents:
    """:class:`Agent` over JSON-RPC over HTTPS: mutual TLS with the deployment's CA (``tls``: the
    engine's client context, which checks each agent's certificate against the host's address),
    or plain HTTP when ``tls`` is None (``insecure_agents``).  One client session for all hosts:
    its connector keeps a few connections per host alive (a session per host cost about 100 kB
    each, too much for a thousand hosts)."""

    def __init__(self, timeout: float = 45.0, connect_timeout: float = 5.0, tls: ssl.SSLContext | None = None):
        # Longer than the agent's own unplug wait (30 s by default), so its answer arrives.
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        read_tls_records_at_a_time()  # a connection is kept to every host: 16 KiB each, not 256
        self._client: aiohttp.ClientSession | None = None
        self._tls = tls
        self._scheme = "https" if tls is not None else "http"

    async def ping(self, host: Host) -> None:
        await self._call(host, verbs.PING)

    async def create_vm(self, host: Host, spec: VmSpec) -> VmStats:
        return _typed(host, VmStats.from_params, await self._call(host, verbs.CREATE, **spec.to_params()))

    async def destroy_vm(self, host: Host, vm_id: str) -> None:
        await self._call(host, verbs.DESTROY, vmId=vm_id)

    async def hotplug_nic(self, host: Host, vm_id: str, nic: NicSpec) -> PlacedNic:
        answer = await self._call(host, verbs.HOTPLUG_NIC, vmId=vm_id, nic=nic.to_params())
        return _typed(host, HotplugAnswer.from_params, answer).nic

    async def hotunplug_nic(self, host: Host, vm_id: str, nic: NicRef) -> None:
        await self._call(host, verbs.HOTUNPLUG_NIC, vmId=vm_id, nic=nic.to_params())

    async def update_device(self, host: Host, vm_id: str, update: NicUpdate) -> PlacedNic:
        answer = await self._call(host, verbs.UPDATE_DEVICE, vmId=vm_id, params=update.to_params())
        return _typed(host, UpdateDeviceAnswer.from_params, answer).nic

    async def vm_statuses(self, host: Host, timeout: float) -> list[VmStatus]:
        answer = await self._call(host, verbs.ALL_VM_STATS, _timeout=timeout)
        return _typed(host, lambda value: list_of(VmStatus.from_params, value), answer)

    async def vm_full_list(self, host: Host, vm_ids: list[str], timeout: float) -> list[VmStats]:
        answer = await self._call(host, verbs.VM_FULL_LIST, _timeout=timeout, vmList=vm_ids)
        return _typed(host, lambda value: list_of(VmStats.from_params, value), answer)

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None or self._client.closed:
            connector = aiohttp.TCPConnector(
                ssl=self._tls if self._tls is not None else False, limit=0, limit_per_host=PER_HOST
            )
            self._client = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._client

    async def _call(self, host: Host, method: str, _timeout: float | None = None, **params: Any) -> Any:
        url = f"{self._scheme}://{host.address}:{host.port}/jsonrpc"
        # A call may be given a shorter limit than the session's (monitoring polls).
        timeout = aiohttp.ClientTimeout(total=_timeout, sock_connect=min(_timeout, 5.0)) if _timeout else self._timeout
        request = jsonrpcclient.request(method, params=params) if params else jsonrpcclient.request(method)
        try:
            async with self._session().post(url, json=request, timeout=timeout) as resp:
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
        if self._client is not None:
            await self._client.close()
            self._client = None


T = TypeVar("T")


def _typed(host: Host, parse: Callable[[Any], T], result: Any) -> T:
    try:
        return parse(result)
    except ParamError as exc:
        raise HostUnreachable(f"host {host.name} answered something this engine cannot read: {exc.detail}") from None
