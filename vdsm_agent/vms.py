"""VM lifecycle verbs: VM.create, VM.destroy, Host.getAllVmStats."""

from __future__ import annotations

import logging
from typing import Any

from shared_schema import errors
from shared_schema.answers import VmStats, failure_data
from shared_schema.errors import WireError
from shared_schema.vm import VmSpec
from vdsm_agent.domain_xml import build_domain, to_string
from vdsm_agent.hypervisor import Domain, Hypervisor, HypervisorError, NoSuchDomain
from vdsm_agent.live_xml import parse_nics
from vdsm_agent.mirroring import MirrorError, PortMirror
from vdsm_agent.nics import NicService

log = logging.getLogger(__name__)


def stats(domain: Domain) -> VmStats:
    return VmStats(domain.vm_id, domain.name, domain.status, tuple(n.placed() for n in parse_nics(domain.xml)))


class VmService:
    def __init__(self, hypervisor: Hypervisor, nics: NicService, mirror: PortMirror):
        self._hv = hypervisor
        self._nics = nics
        self._mirror = mirror

    async def create(self, spec: VmSpec) -> VmStats:
        async with self._nics.lock(spec.vm_id):
            try:
                await self._hv.domain(spec.vm_id)
                raise WireError(errors.VM_EXISTS, f"VM {spec.vm_id} already runs on this host")
            except NoSuchDomain:
                pass
            try:
                domain = await self._hv.create(to_string(build_domain(spec)))
            except HypervisorError as exc:
                raise WireError(errors.CREATE_FAILED, exc.message, failure_data(libvirt_code=exc.code)) from None
            await self._mirror_nics(spec, domain)
            log.info("started VM %s (%s)", spec.name, spec.vm_id)
            return stats(domain)

    async def _mirror_nics(self, spec: VmSpec, domain: Domain) -> None:
        """Port mirroring for the NICs that ask for it; if any fails, the VM does not run."""
        taps = {n.alias: n.tap for n in parse_nics(domain.xml)}
        try:
            for nic in spec.nics:
                if nic.promisc:
                    await self._mirror.mirror(taps[nic.alias], nic.promisc)
        except MirrorError as exc:
            for tap in taps.values():
                await self._mirror.unmirror(tap)
            await self._hv.destroy(spec.vm_id)
            raise WireError(errors.CREATE_FAILED, f"port mirroring failed: {exc}") from None

    async def destroy(self, vm_id: str) -> dict[str, Any]:
        async with self._nics.lock(vm_id):
            domain = await self._nics.domain(vm_id)
            try:
                await self._hv.destroy(vm_id)
            except HypervisorError as exc:
                raise WireError(errors.UNEXPECTED, exc.message, failure_data(libvirt_code=exc.code)) from None
            for nic in parse_nics(domain.xml):
                await self._mirror.unmirror(nic.tap)
            log.info("destroyed VM %s", vm_id)
            return {"vmId": vm_id, "status": "Down"}

    async def all_stats(self) -> list[VmStats]:
        return [stats(d) for d in await self._hv.domains()]
