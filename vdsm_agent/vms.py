"""VM lifecycle and monitoring verbs: VM.create, VM.destroy, Host.getAllVmStats, Host.getVMFullList.

Every answer is read from the live XML at the time of the call (one XMLDesc per VM): a device
change made by anyone — a guest that released a NIC after its unplug call gave up, ``virsh
attach-device`` behind the agent's back — changes the VM's device hash in the very next
Host.getAllVmStats.  Only the parsing is remembered, keyed by a digest of the XML text itself:
a poll of a host whose VMs did not change parses nothing (500 VMs: 200 ms a poll before, 20 ms).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_schema import errors
from shared_schema.answers import VM_DOWN, PlacedNic, VmStats, VmStatus, device_hash, failure_data
from shared_schema.errors import WireError
from shared_schema.vm import VmSpec, is_q35
from vdsm_agent import images, pcie
from vdsm_agent.domain_xml import DEFAULT_HOTPLUG_PORTS, build_domain, to_string
from vdsm_agent.hypervisor import Domain, Hypervisor, HypervisorError, NoSuchDomain
from vdsm_agent.live_xml import parse_nics
from vdsm_agent.metrics import Metrics
from vdsm_agent.mirroring import MirrorError, PortMirror
from vdsm_agent.nics import NicService

log = logging.getLogger(__name__)


# VM id -> (digest of its live XML, its NICs as placed, their device hash): one entry a VM.
_parsed: dict[str, tuple[bytes, tuple[PlacedNic, ...], str]] = {}


def _placed(domain: Domain) -> tuple[tuple[PlacedNic, ...], str]:
    """The NICs of a domain's live XML as placed, and their device hash; parsed again only when
    the XML changed since the last look."""
    key = hashlib.blake2b(domain.xml.encode(), digest_size=16).digest()
    known = _parsed.get(domain.vm_id)
    if known is not None and known[0] == key:
        return known[1], known[2]
    nics = tuple(n.placed() for n in parse_nics(domain.xml))
    _parsed[domain.vm_id] = (key, nics, device_hash(nics))
    return nics, _parsed[domain.vm_id][2]


def forget(vm_id: str) -> None:
    """The VM is gone from this host."""
    _parsed.pop(vm_id, None)


def stats(domain: Domain) -> VmStats:
    """The VM with its NICs as placed, and their hash (VM.create, Host.getVMFullList)."""
    nics, digest = _placed(domain)
    return VmStats(domain.vm_id, domain.name, domain.status, nics, digest)


def status(domain: Domain) -> VmStatus:
    """The VM's state and device hash, without its devices (Host.getAllVmStats)."""
    return VmStatus(domain.vm_id, domain.name, domain.status, _placed(domain)[1])


class VmService:
    def __init__(
        self,
        hypervisor: Hypervisor,
        nics: NicService,
        mirror: PortMirror,
        metrics: Metrics | None = None,
        images_dir: Path = Path("/var/lib/hotplug-nic/images"),
        log_dir: Path = Path("/var/log/hotplug-nic"),
        pcie_hotplug_ports: int = DEFAULT_HOTPLUG_PORTS,
    ):
        self._hv = hypervisor
        self._nics = nics
        self._mirror = mirror
        self._metrics = metrics or nics.metrics
        self._images = images_dir
        self._logs = log_dir
        self._hotplug_ports = pcie_hotplug_ports

    async def create(self, spec: VmSpec) -> VmStats:
        async with self._nics.lock(spec.vm_id):
            try:
                await self._hv.domain(spec.vm_id)
                raise WireError(errors.VM_EXISTS, f"VM {spec.vm_id} already runs on this host")
            except NoSuchDomain:
                pass
            kernel = images.resolve(self._images, spec.kernel, "kernel")
            initrd = images.resolve(self._images, spec.initrd, "initrd")
            disks = [images.resolve_disk(self._images, d, f"drives[{i}].image") for i, d in enumerate(spec.drives)]
            console = images.console_log(self._logs, spec.vm_id)
            xml = build_domain(spec, kernel, initrd, str(console), disks, self._hotplug_ports)
            try:
                domain = await self._hv.create(to_string(xml))
            except HypervisorError as exc:
                raise WireError(errors.CREATE_FAILED, exc.message, failure_data(libvirt_code=exc.code)) from None
            self._check_hotplug_ports(spec, domain)
            await self._mirror_nics(spec, domain)
            await self._mirror.sync()  # its taps may be new ports of mirrored bridges
            log.info("started VM %s (%s)", spec.name, spec.vm_id)
            return stats(domain)

    def _check_hotplug_ports(self, spec: VmSpec, domain: Domain) -> None:
        """A q35 guest should have as many free root ports as it was given for hot plug."""
        if not is_q35(spec.machine):
            return
        free, _ = pcie.free_root_ports(domain.xml)
        if free != self._hotplug_ports:
            log.warning("VM %s has %d free PCIe root ports for hot plug, %d were meant", spec.vm_id, free,
                        self._hotplug_ports)  # fmt: skip

    async def _mirror_nics(self, spec: VmSpec, domain: Domain) -> None:
        """Port mirroring for the NICs that ask for it; if any fails, the VM does not run."""
        taps = {n.alias: n.tap for n in parse_nics(domain.xml)}
        try:
            for nic in spec.nics:
                if nic.promisc:
                    await self._mirror.mirror(spec.vm_id, nic.alias, taps.get(nic.alias, ""), nic.promisc)
        except MirrorError as exc:
            await self._hv.destroy(spec.vm_id)
            await self._mirror.forget_vm(spec.vm_id)
            raise WireError(errors.CREATE_FAILED, f"port mirroring failed: {exc}") from None

    async def destroy(self, vm_id: str) -> dict[str, Any]:
        async with self._nics.lock(vm_id):
            await self._nics.domain(vm_id)
            try:
                await self._hv.destroy(vm_id)
            except HypervisorError as exc:
                raise WireError(errors.UNEXPECTED, exc.message, failure_data(libvirt_code=exc.code)) from None
            await self._mirror.forget_vm(vm_id)
            forget(vm_id)
            log.info("destroyed VM %s", vm_id)
            return {"vmId": vm_id, "status": VM_DOWN}

    # Parsing and hashing hundreds of domains is CPU work: it runs in a worker thread, so that a
    # poll does not hold up the calls that arrive meanwhile.

    async def all_statuses(self) -> list[VmStatus]:
        domains = await self._hv.domains()
        found = await asyncio.to_thread(lambda: [status(d) for d in domains])
        self._metrics.count_vms(s.status for s in found)
        return found

    async def full_list(self, vm_ids: Sequence[str] | None = None) -> list[VmStats]:
        """The listed VMs that exist here (all when None), in the order asked, each once."""
        if vm_ids is None:
            domains = await self._hv.domains()
        else:
            domains = []
            for vm_id in dict.fromkeys(vm_ids):
                try:
                    domains.append(await self._hv.domain(vm_id))
                except NoSuchDomain:
                    continue  # not on this host: simply absent
        return await asyncio.to_thread(lambda: [stats(d) for d in domains])
