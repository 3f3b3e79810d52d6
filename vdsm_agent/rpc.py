"""The JSON-RPC face of the agent: VDSM's method names, dispatched explicitly.

Each method validates its params with ``shared_schema`` and calls one service; the services
answer with :mod:`shared_schema.answers` types, turned into their wire form (``to_params``)
here and nowhere else.  A :class:`WireError` becomes a JSON-RPC error with VDSM's code;
anything else is logged with its traceback and answered as code 16 "Unexpected exception",
so a caller never sees a traceback.  A message that quotes what the caller sent is cut to
:data:`MAX_MESSAGE` characters, in the answer and in the log alike (a megabyte of junk in a
parameter is not a megabyte of log per call).  Every call is timed into the latency histogram
by verb, and hotplugNic / hotunplugNic / updateDevice outcomes are counted by code (0 for
success).  The envelope around the calls (parsing, batches, notifications) is
:mod:`vdsm_agent.envelope`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jsonrpcserver import Error, Result, Success

from shared_schema import errors, verbs
from shared_schema.device_update import NicUpdate
from shared_schema.errors import ParamError, WireError
from shared_schema.nic import NicRef, NicSpec, parse_vm_id
from shared_schema.vm import VmSpec
from vdsm_agent import devices, envelope, host
from vdsm_agent.hypervisor import Hypervisor
from vdsm_agent.metrics import Metrics
from vdsm_agent.nics import NicService
from vdsm_agent.vms import VmService

log = logging.getLogger(__name__)

Method = Callable[..., Awaitable[Result]]

MAX_MESSAGE = 1000  # characters of an error message: room for any the agent or libvirt writes itself


def clip(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}… ({len(message) - MAX_MESSAGE} more characters)"


@dataclass(frozen=True)
class Services:
    hypervisor: Hypervisor
    nics: NicService
    vms: VmService
    metrics: Metrics


def parse_vm_list(value: Any) -> list[str] | None:
    """Host.getVMFullList's ``vmList``: absent or null for every VM, else a list of VM UUIDs."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ParamError.invalid("vmList", f"expected a list of VM ids, got {value!r}")
    ids = []
    for i, entry in enumerate(value):
        try:
            if not isinstance(entry, str):
                raise ValueError(entry)
            ids.append(str(uuid.UUID(entry)))
        except ValueError:
            raise ParamError.invalid(f"vmList[{i}]", f"expected a UUID, got {entry!r}") from None
    return ids


async def _answer(verb: str, work: Awaitable[Any], metrics: Metrics, *, count: bool = False) -> Result:
    """Run ``work`` and answer its result or its error; timed under ``verb``, and with ``count``
    its outcome counted by code (0 for success)."""
    start = time.perf_counter()
    code = 0
    try:
        return Success(await work)
    except WireError as exc:
        code = exc.error.code
        message = clip(exc.message)
        if not exc.error.expected:
            log.error("%s failed: %s", verb, message)
        else:
            log.info("%s refused: %s", verb, message)
        return Error(exc.error.code, message, exc.data or None)
    except Exception as exc:
        code = errors.UNEXPECTED.code
        log.exception("%s failed unexpectedly", verb)
        return Error(errors.UNEXPECTED.code, clip(f"{errors.UNEXPECTED.message}: {exc}"))
    finally:
        metrics.request_duration.labels(verb).observe(time.perf_counter() - start)
        if count:
            metrics.nic_results.labels(verb, str(code)).inc()


def methods(services: Services) -> dict[str, Method]:
    nics, vms, metrics = services.nics, services.vms, services.metrics

    async def ping() -> Result:
        async def work() -> bool:
            return True

        return await _answer(verbs.PING, work(), metrics)

    async def get_capabilities() -> Result:
        return await _answer(verbs.CAPABILITIES, host.capabilities(services.hypervisor), metrics)

    async def get_all_vm_stats() -> Result:
        async def work() -> list[dict[str, Any]]:
            return [s.to_params() for s in await vms.all_statuses()]

        return await _answer(verbs.ALL_VM_STATS, work(), metrics)

    async def get_vm_full_list(vmList: Any = None) -> Result:
        async def work() -> list[dict[str, Any]]:
            return [s.to_params() for s in await vms.full_list(parse_vm_list(vmList))]

        return await _answer(verbs.VM_FULL_LIST, work(), metrics)

    async def create(**params: Any) -> Result:
        async def work() -> dict[str, Any]:
            return (await vms.create(VmSpec.from_params(params))).to_params()

        return await _answer(verbs.CREATE, work(), metrics)

    async def destroy(vmId: Any = None) -> Result:
        async def work() -> dict[str, Any]:
            return await vms.destroy(parse_vm_id(vmId))

        return await _answer(verbs.DESTROY, work(), metrics)

    async def hotplug_nic(vmId: Any = None, nic: Any = None) -> Result:
        async def work() -> dict[str, Any]:
            return (await nics.hotplug(parse_vm_id(vmId), NicSpec.from_params(nic))).to_params()

        return await _answer(verbs.HOTPLUG_NIC, work(), metrics, count=True)

    async def hotunplug_nic(vmId: Any = None, nic: Any = None) -> Result:
        async def work() -> dict[str, Any]:
            return (await nics.hotunplug(parse_vm_id(vmId), NicRef.from_params(nic))).to_params()

        return await _answer(verbs.HOTUNPLUG_NIC, work(), metrics, count=True)

    async def update_device(vmId: Any = None, params: Any = None) -> Result:
        async def work() -> dict[str, Any]:
            vm_id, update = parse_vm_id(vmId), NicUpdate.from_params(params)
            return (await devices.update_nic(services.hypervisor, nics, vm_id, update)).to_params()

        return await _answer(verbs.UPDATE_DEVICE, work(), metrics, count=True)

    return {
        verbs.PING: ping,
        verbs.CAPABILITIES: get_capabilities,
        verbs.ALL_VM_STATS: get_all_vm_stats,
        verbs.VM_FULL_LIST: get_vm_full_list,
        verbs.CREATE: create,
        verbs.DESTROY: destroy,
        verbs.HOTPLUG_NIC: hotplug_nic,
        verbs.HOTUNPLUG_NIC: hotunplug_nic,
        verbs.UPDATE_DEVICE: update_device,
        # The seed's bare names (timed and counted under the full ones).
        "hotplugNic": hotplug_nic,
        "hotunplugNic": hotunplug_nic,
    }


async def dispatch(body: str | bytes, table: dict[str, Method]) -> str:
    """The answer to a request body: JSON text, or '' for notifications (see :mod:`.envelope`)."""
    return await envelope.answer(body, table)
