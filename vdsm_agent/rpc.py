"""The JSON-RPC face of the agent: VDSM's method names, dispatched explicitly.

Each method validates its params with ``shared_schema`` and calls one service; the services
answer with :mod:`shared_schema.answers` types, turned into their wire form (``to_params``)
here and nowhere else.  A :class:`WireError` becomes a JSON-RPC error with VDSM's code;
anything else is logged with its traceback and answered as code 16 "Unexpected exception",
so a caller never sees a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jsonrpcserver import Error, Result, Success, async_dispatch

from shared_schema import errors
from shared_schema.errors import WireError
from shared_schema.nic import NicRef, NicSpec, parse_vm_id
from shared_schema.vm import VmSpec
from vdsm_agent import host
from vdsm_agent.hypervisor import Hypervisor
from vdsm_agent.nics import NicService
from vdsm_agent.vms import VmService

log = logging.getLogger(__name__)

Method = Callable[..., Awaitable[Result]]


@dataclass(frozen=True)
class Services:
    hypervisor: Hypervisor
    nics: NicService
    vms: VmService


async def _answer(name: str, work: Awaitable[Any]) -> Result:
    try:
        return Success(await work)
    except WireError as exc:
        if not exc.error.expected:
            log.error("%s failed: %s", name, exc.message)
        else:
            log.info("%s refused: %s", name, exc.message)
        return Error(exc.error.code, exc.message, exc.data or None)
    except Exception as exc:
        log.exception("%s failed unexpectedly", name)
        return Error(errors.UNEXPECTED.code, f"{errors.UNEXPECTED.message}: {exc}")


def methods(services: Services) -> dict[str, Method]:
    nics, vms = services.nics, services.vms

    async def ping() -> Result:
        return Success(True)

    async def get_capabilities() -> Result:
        return await _answer("Host.getCapabilities", host.capabilities(services.hypervisor))

    async def get_all_vm_stats() -> Result:
        async def work() -> list[dict[str, Any]]:
            return [s.to_params() for s in await vms.all_stats()]

        return await _answer("Host.getAllVmStats", work())

    async def create(**params: Any) -> Result:
        async def work() -> dict[str, Any]:
            return (await vms.create(VmSpec.from_params(params))).to_params()

        return await _answer("VM.create", work())

    async def destroy(vmId: Any = None) -> Result:
        async def work() -> dict[str, Any]:
            return await vms.destroy(parse_vm_id(vmId))

        return await _answer("VM.destroy", work())

    async def hotplug_nic(vmId: Any = None, nic: Any = None) -> Result:
        async def work() -> dict[str, Any]:
            return (await nics.hotplug(parse_vm_id(vmId), NicSpec.from_params(nic))).to_params()

        return await _answer("VM.hotplugNic", work())

    async def hotunplug_nic(vmId: Any = None, nic: Any = None) -> Result:
        async def work() -> dict[str, Any]:
            return (await nics.hotunplug(parse_vm_id(vmId), NicRef.from_params(nic))).to_params()

        return await _answer("VM.hotunplugNic", work())

    return {
        "Host.ping": ping,
        "Host.getCapabilities": get_capabilities,
        "Host.getAllVmStats": get_all_vm_stats,
        "VM.create": create,
        "VM.destroy": destroy,
        "VM.hotplugNic": hotplug_nic,
        "VM.hotunplugNic": hotunplug_nic,
        # The seed's bare names.
        "hotplugNic": hotplug_nic,
        "hotunplugNic": hotunplug_nic,
    }


async def dispatch(body: str, table: dict[str, Method]) -> str:
    response: Any = await async_dispatch(body, methods=table)
    return str(response)
