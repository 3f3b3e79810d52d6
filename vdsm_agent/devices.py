"""VM.updateDevice for NICs: change a plugged NIC's link state without unplugging it.

As VDSM does it: take the NIC's ``<interface>`` from the live XML, set ``<link state='up'|'down'/>``
and hand it back to libvirt's updateDeviceFlags (live); then read the NIC from the live XML again
and answer it as placed.  Only the link state changes here: a ``network`` or ``portMirroring``
other than the NIC's own, or a NIC the VM does not have, is refused (56) before libvirt is asked.
A link already as asked is answered at once (a retry after a lost answer must not fail).  Calls
for one VM run one at a time, with its plugs and unplugs (the NIC service's lock).
"""

from __future__ import annotations

import logging

from shared_schema import errors
from shared_schema.answers import UpdateDeviceAnswer, failure_data
from shared_schema.device_update import ONLY_LINK, NicUpdate
from shared_schema.errors import WireError
from vdsm_agent.hypervisor import Hypervisor, HypervisorError
from vdsm_agent.interface_xml import set_link_state, to_string
from vdsm_agent.live_xml import LiveNic, interface_element, parse_nics
from vdsm_agent.mirroring import parse_records
from vdsm_agent.nics import NicService

log = logging.getLogger(__name__)


def refusal(update: NicUpdate, nic: LiveNic, mirrored: tuple[str, ...]) -> str | None:
    """Why ``update`` asks for more than a link state change of ``nic`` (None: it does not)."""
    if update.network is not None and update.network != nic.network:
        return f"network: {nic.alias} is on {nic.network or 'no network'!r}, asked {update.network!r}; {ONLY_LINK}"
    if update.port_mirroring is not None and set(update.port_mirroring) != set(mirrored):
        return (
            f"portMirroring: {nic.alias} mirrors {sorted(mirrored)}, asked {sorted(update.port_mirroring)}; {ONLY_LINK}"
        )
    return None


async def update_nic(hypervisor: Hypervisor, nics: NicService, vm_id: str, update: NicUpdate) -> UpdateDeviceAnswer:
    async with nics.lock(vm_id):
        xml = (await nics.domain(vm_id)).xml
        nic = next((n for n in parse_nics(xml) if n.alias == update.alias), None)
        if nic is None:
            raise WireError(errors.UPDATE_DEVICE, f"no such device: the VM has no NIC with alias {update.alias}")
        mirrored = next((r.bridges for r in parse_records(xml) if r.alias == nic.alias), ())
        why = refusal(update, nic, mirrored)
        if why:
            raise WireError(errors.UPDATE_DEVICE, why)
        if update.link_active is None or update.link_active == nic.placed().link_active:
            return UpdateDeviceAnswer(vm_id, nic.placed())
        iface = interface_element(xml, nic.alias)
        assert iface is not None  # parse_nics found it in the same XML
        try:
            await hypervisor.update_device(vm_id, to_string(set_link_state(iface, update.link_active)))
        except HypervisorError as exc:
            raise WireError(errors.UPDATE_DEVICE, exc.message, failure_data(libvirt_code=exc.code)) from None
        shown = next((n for n in parse_nics((await nics.domain(vm_id)).xml) if n.alias == nic.alias), None)
        if shown is None:
            raise WireError(errors.UPDATE_DEVICE, f"{nic.alias} left the VM while its link was being set")
        if shown.placed().link_active != update.link_active:
            raise WireError(errors.UPDATE_DEVICE, f"libvirt accepted the change, but {nic.alias}'s link is still "
                            f"{shown.link_state}")  # fmt: skip
        log.info("VM %s: link of %s (%s) set %s", vm_id, nic.alias, nic.mac, "up" if update.link_active else "down")
        return UpdateDeviceAnswer(vm_id, shown.placed())
