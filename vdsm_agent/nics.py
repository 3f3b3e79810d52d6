"""The NIC use cases of the agent: hotplugNic and hotunplugNic, as VDSM does them.

Plug: build the <interface>, attach it live, read back where libvirt placed it, then set up
port mirroring; if mirroring fails the NIC is unplugged again and the call fails (49).
Unplug: find the device by alias (or MAC), ask libvirt to detach it, and succeed only when
the guest has released it (DEVICE_REMOVED); then remove its mirroring.  A removal that comes
after the timeout is logged.  Calls for one VM run one at a time; other VMs' calls proceed in
parallel.  Answers are :mod:`shared_schema.answers` types; failures carry its ``failure_data``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import NoReturn

from shared_schema import errors
from shared_schema.answers import HotplugAnswer, HotunplugAnswer, UnplugReason, failure_data
from shared_schema.errors import WireError
from shared_schema.nic import NicRef, NicSpec
from vdsm_agent.hypervisor import Domain, Hypervisor, HypervisorError, NoSuchDomain
from vdsm_agent.interface_xml import build_interface, to_string
from vdsm_agent.live_xml import LiveNic, parse_nics
from vdsm_agent.mirroring import MirrorError, PortMirror

log = logging.getLogger(__name__)


class NicService:
    def __init__(self, hypervisor: Hypervisor, mirror: PortMirror, unplug_timeout: float):
        self._hv = hypervisor
        self._mirror = mirror
        self._timeout = unplug_timeout
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._waiters: dict[tuple[str, str], asyncio.Future[bool]] = {}

    def lock(self, vm_id: str) -> asyncio.Lock:
        return self._locks[vm_id]

    def on_device_event(self, vm_id: str, alias: str, removed: bool) -> None:
        """The hypervisor's listener: wake the unplug waiting for this device, if any."""
        waiter = self._waiters.pop((vm_id, alias), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(removed)
        elif removed:
            log.info("VM %s released device %s after its unplug call had given up", vm_id, alias)

    async def domain(self, vm_id: str) -> Domain:
        try:
            return await self._hv.domain(vm_id)
        except NoSuchDomain:
            raise WireError(errors.NO_VM, f"no VM with id {vm_id} on this host") from None

    async def hotplug(self, vm_id: str, nic: NicSpec) -> HotplugAnswer:
        async with self.lock(vm_id):
            present = parse_nics((await self.domain(vm_id)).xml)
            for other in present:
                if (other.alias, other.mac) == (nic.alias, nic.mac):
                    # Already there (a retry after a lost answer): plugging is idempotent.
                    log.info("VM %s: %s (%s) is plugged already", vm_id, nic.alias, nic.mac)
                    return HotplugAnswer(vm_id, other.placed())
                if other.alias == nic.alias:
                    raise WireError(errors.HOTPLUG_NIC, f"VM already has a device with alias {nic.alias}")
                if other.mac == nic.mac:
                    raise WireError(errors.HOTPLUG_NIC, f"VM already has a NIC with MAC {nic.mac}")
            try:
                await self._hv.attach(vm_id, to_string(build_interface(nic)))
            except HypervisorError as exc:
                raise WireError(errors.HOTPLUG_NIC, exc.message, failure_data(libvirt_code=exc.code)) from None
            shown = self._find(parse_nics((await self.domain(vm_id)).xml), nic.alias, None)
            if shown is None:
                await self._undo_plug(vm_id, nic.alias, "libvirt accepted the NIC but does not show it")
            if nic.promisc:
                try:
                    await self._mirror.mirror(shown.tap, nic.promisc)
                except MirrorError as exc:
                    await self._undo_plug(vm_id, shown.alias, f"port mirroring failed: {exc}")
            log.info("VM %s: plugged %s (%s) at %s", vm_id, nic.alias, nic.mac, shown.address)
            return HotplugAnswer(vm_id, shown.placed())

    async def hotunplug(self, vm_id: str, ref: NicRef) -> HotunplugAnswer:
        async with self.lock(vm_id):
            nics = parse_nics((await self.domain(vm_id)).xml)
            target = self._find(nics, ref.alias, ref.mac)
            if target is None:
                raise WireError(
                    errors.HOTUNPLUG_NIC,
                    f"no such device: the VM has no NIC with {ref}",
                    failure_data(reason=UnplugReason.NO_SUCH_DEVICE),
                )
            await self._detach_and_wait(vm_id, target.alias)
            # Only once the guest let go: a refused unplug keeps the NIC, and its mirroring.
            await self._mirror.unmirror(target.tap)
            log.info("VM %s: unplugged %s (%s)", vm_id, target.alias, target.mac)
            return HotunplugAnswer(vm_id, target.alias, target.mac)

    async def _undo_plug(self, vm_id: str, alias: str, reason: str) -> NoReturn:
        """Take a NIC out again after a failure that followed its attach, then fail with 49."""
        try:
            await self._detach_and_wait(vm_id, alias)
        except WireError as undo:
            reason += f"; unplugging it again failed too: {undo.detail}"
        raise WireError(errors.HOTPLUG_NIC, reason)

    @staticmethod
    def _find(nics: list[LiveNic], alias: str | None, mac: str | None) -> LiveNic | None:
        if alias:
            return next((n for n in nics if n.alias == alias), None)
        matches = [n for n in nics if n.mac == mac]
        if len(matches) > 1:
            raise WireError(
                errors.HOTUNPLUG_NIC,
                f"the VM has {len(matches)} NICs with MAC {mac}; name one by alias",
            )
        return matches[0] if matches else None

    async def _detach_and_wait(self, vm_id: str, alias: str) -> None:
        key = (vm_id, alias)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[key] = waiter
        try:
            await self._hv.detach(vm_id, alias)
            removed = await asyncio.wait_for(asyncio.shield(waiter), self._timeout)
        except HypervisorError as exc:
            raise WireError(errors.HOTUNPLUG_NIC, exc.message, failure_data(libvirt_code=exc.code)) from None
        except TimeoutError:
            raise WireError(
                errors.HOTUNPLUG_NIC,
                f"the guest did not release {alias} within {self._timeout:g} s; "
                "the device stays attached until the guest acknowledges the unplug",
                failure_data(reason=UnplugReason.TIMEOUT),
            ) from None
        finally:
            if not waiter.done():
                self._waiters.pop(key, None)  # a later removal is logged as late
        if not removed:
            raise WireError(
                errors.HOTUNPLUG_NIC,
                f"the guest refused to release {alias}",
                failure_data(reason=UnplugReason.REFUSED),
            )
