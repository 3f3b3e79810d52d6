"""The NIC use cases of the agent: hotplugNic and hotunplugNic, as VDSM does them.

Plug: build the <interface>, attach it live, read back where libvirt placed it, then set up
port mirroring; if mirroring fails the NIC is unplugged again and the call fails (49).
Unplug: find the device by alias (or MAC), ask libvirt to detach it, and succeed only when
the guest has released it (DEVICE_REMOVED); then remove its mirroring.  While the guest has
not answered, the request is sent again every ``unplug_retry_interval`` seconds within
``unplug_timeout``: a request that reaches a guest whose kernel is still booting is lost.
A removal that comes after the timeout is logged and takes its mirroring along; the engine
sees it through Host.getAllVmStats, which reads the live XML every time.  Calls for one VM
run one at a time; other VMs' calls proceed in parallel.  Answers are
:mod:`shared_schema.answers` types; failures carry its ``failure_data``.
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
from vdsm_agent import pcie
from vdsm_agent.hypervisor import Domain, Hypervisor, HypervisorError, NoSuchDomain
from vdsm_agent.interface_xml import build_interface, to_string
from vdsm_agent.live_xml import LiveNic, parse_nics
from vdsm_agent.metrics import Metrics
from vdsm_agent.mirroring import MirrorError, PortMirror

log = logging.getLogger(__name__)

VIR_ERR_DEVICE_MISSING = 99  # libvirt's "device not found"
# How libvirt and QEMU word a refusal because an unplug of the device is pending already: QEMU's
# device_del ("Device net1 is already in the process of unplug"), and native PCIe hotplug while
# the guest handles the previous press ("guest is busy (power indicator blinking)").
_IN_PROGRESS = ("already in the process of unplug", "already in progress", "power indicator blinking")


def unplug_in_progress(exc: HypervisorError) -> bool:
    """Whether libvirt refused a detach because an unplug of that device is already pending."""
    return any(words in exc.message.lower() for words in _IN_PROGRESS)


class NicService:
    def __init__(
        self,
        hypervisor: Hypervisor,
        mirror: PortMirror,
        unplug_timeout: float,
        unplug_retry_interval: float = 6.0,
        metrics: Metrics | None = None,
    ):
        self._hv = hypervisor
        self._mirror = mirror
        self._timeout = unplug_timeout
        self._retry_interval = unplug_retry_interval
        self.metrics = metrics or Metrics()
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._waiters: dict[tuple[str, str], asyncio.Future[bool]] = {}
        self._given_up: set[tuple[str, str]] = set()  # unplugs that answered 50 (timeout)
        self._settled: set[tuple[str, str]] = set()  # removals seen in the live XML before their event
        self._tasks: set[asyncio.Task[None]] = set()

    def lock(self, vm_id: str) -> asyncio.Lock:
        return self._locks[vm_id]

    def on_device_event(self, vm_id: str, alias: str, removed: bool) -> None:
        """The hypervisor's listener: wake the unplug waiting for this device, if any."""
        key = (vm_id, alias)
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(removed)
            return
        if not removed:
            return
        if key in self._settled:
            self._settled.discard(key)
            return
        if key in self._given_up:
            self._given_up.discard(key)
            self.metrics.late_removals.inc()
            log.info("VM %s released device %s after its unplug call had given up", vm_id, alias)
        else:
            log.info("VM %s: device %s was removed, not by an unplug of this agent", vm_id, alias)
        # Nothing caches the VM's devices: its next stats (and device hash) show the device gone.
        # Its port mirroring goes with it.
        task = asyncio.get_running_loop().create_task(self._unmirror_removed(vm_id, alias))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unmirror_removed(self, vm_id: str, alias: str) -> None:
        try:
            async with self.lock(vm_id):
                await self._mirror.unmirror(vm_id, alias)
        except Exception:
            log.exception("VM %s: removing the port mirroring of %s failed", vm_id, alias)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def domain(self, vm_id: str) -> Domain:
        try:
            return await self._hv.domain(vm_id)
        except NoSuchDomain:
            raise WireError(errors.NO_VM, f"no VM with id {vm_id} on this host") from None

    async def hotplug(self, vm_id: str, nic: NicSpec) -> HotplugAnswer:
        async with self.lock(vm_id):
            xml = (await self.domain(vm_id)).xml
            present = parse_nics(xml)
            for other in present:
                if (other.alias, other.mac) == (nic.alias, nic.mac):
                    # Already there (a retry after a lost answer): plugging is idempotent.
                    log.info("VM %s: %s (%s) is plugged already", vm_id, nic.alias, nic.mac)
                    return HotplugAnswer(vm_id, other.placed())
                if other.alias == nic.alias:
                    raise WireError(errors.HOTPLUG_NIC, f"VM already has a device with alias {nic.alias}")
                if other.mac == nic.mac:
                    raise WireError(errors.HOTPLUG_NIC, f"VM already has a NIC with MAC {nic.mac}")
            full = pcie.no_free_port(xml) if nic.address is None else None  # q35: libvirt picks a root port
            if full:
                raise WireError(errors.HOTPLUG_NIC, full)
            try:
                await self._hv.attach(vm_id, to_string(build_interface(nic)))
            except HypervisorError as exc:
                raise WireError(errors.HOTPLUG_NIC, exc.message, failure_data(libvirt_code=exc.code)) from None
            self._given_up.discard((vm_id, nic.alias))  # a new device under that alias
            self._settled.discard((vm_id, nic.alias))
            shown = self._find(parse_nics((await self.domain(vm_id)).xml), nic.alias, None)
            if shown is None:
                await self._undo_plug(vm_id, nic.alias, "libvirt accepted the NIC but does not show it")
            if nic.promisc:
                try:
                    await self._mirror.mirror(vm_id, shown.alias, shown.tap, nic.promisc)
                except MirrorError as exc:
                    await self._undo_plug(vm_id, shown.alias, f"port mirroring failed: {exc}")
            await self._mirror.sync()  # its tap may be a new port of a mirrored bridge
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
            await self._mirror.unmirror(vm_id, target.alias)
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
        """Ask for the unplug, again every retry interval while the guest is silent, until
        DEVICE_REMOVED (done), DEVICE_REMOVAL_FAILED (50 refused) or the timeout (50 timeout)."""
        key = (vm_id, alias)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters[key] = waiter
        self._given_up.discard(key)
        start = loop.time()
        deadline = start + self._timeout
        sent = 1
        try:
            removed = await self._request_unplug(vm_id, alias)
            while removed is None:
                remaining = deadline - loop.time()
                wait = max(0.0, min(self._retry_interval, remaining))
                try:
                    removed = await asyncio.wait_for(asyncio.shield(waiter), wait)
                    break
                except TimeoutError:
                    if wait >= remaining:
                        raise
                sent += 1
                self.metrics.unplug_resends.inc()
                log.info(
                    "VM %s: the guest has not released %s after %.1f s; sending the unplug request again (%d)",
                    vm_id, alias, loop.time() - start, sent,
                )  # fmt: skip
                removed = await self._request_unplug(vm_id, alias)
        except HypervisorError as exc:
            raise WireError(errors.HOTUNPLUG_NIC, exc.message, failure_data(libvirt_code=exc.code)) from None
        except TimeoutError:
            self._given_up.add(key)
            asked = "once" if sent == 1 else f"{sent} times"
            raise WireError(
                errors.HOTUNPLUG_NIC,
                f"the guest did not release {alias} within {self._timeout:g} s (asked {asked}); "
                "the device stays attached until the guest acknowledges the unplug",
                failure_data(reason=UnplugReason.TIMEOUT),
            ) from None
        finally:
            if not waiter.done():
                self._waiters.pop(key, None)  # a later removal is logged as late
            else:
                self._settled.discard(key)  # its event came: nothing more to expect
        if not removed:
            raise WireError(
                errors.HOTUNPLUG_NIC,
                f"the guest refused to release {alias}",
                failure_data(reason=UnplugReason.REFUSED),
            )

    async def _request_unplug(self, vm_id: str, alias: str) -> bool | None:
        """Send one detach request: True if the device turned out to be gone already, else None
        (the answer comes as an event).  libvirt refusing because an unplug is pending is fine."""
        try:
            await self._hv.detach(vm_id, alias)
            return None
        except HypervisorError as exc:
            if unplug_in_progress(exc):
                log.info("VM %s: an unplug of %s is in progress already (%s)", vm_id, alias, exc.message)
                return None
            if exc.code != VIR_ERR_DEVICE_MISSING:
                raise
            if await self._present(vm_id, alias):
                return None  # libvirt has it still; its removal event is on the way
            if len(self._settled) > 10_000:  # events that never came: forget them
                self._settled.clear()
            self._settled.add((vm_id, alias))  # its DEVICE_REMOVED may still arrive: not news then
            log.info("VM %s: %s is gone already (libvirt: %s)", vm_id, alias, exc.message)
            return True

    async def _present(self, vm_id: str, alias: str) -> bool:
        try:
            return alias in {n.alias for n in parse_nics((await self._hv.domain(vm_id)).xml)}
        except NoSuchDomain:
            return False
