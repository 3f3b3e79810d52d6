"""The benchmark simulator places and refuses NICs as libvirt does; NIC calls on it keep their wire codes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shared_schema import errors
from shared_schema.answers import HotunplugAnswer, PlacedNic, UnplugReason, failure_data
from shared_schema.errors import WireError
from shared_schema.nic import NicRef, NicSpec, PciAddress
from shared_schema.vm import VmSpec
from vdsm_agent.domain_xml import build_domain
from vdsm_agent.domain_xml import to_string as domain_string
from vdsm_agent.hypervisor import HypervisorError, NoSuchDomain
from vdsm_agent.interface_xml import build_interface, to_string
from vdsm_agent.live_xml import LiveNic, parse_nics
from vdsm_agent.mirroring import PortMirror
from vdsm_agent.nics import NicService
from vdsm_agent.simulated import SimulatedHostNet, SimulatedHypervisor

MISSING_BRIDGE = "hpt-nosuch0"


def nic_spec(n: int = 1, **changes: Any) -> NicSpec:
    """A bridgeless NIC (a tap on no bridge): nothing on the host needs to exist for it."""
    params: dict[str, Any] = {
        "type": "interface",
        "device": "bridgeless",
        "macAddr": f"00:1a:4a:16:{n >> 8:02x}:{n & 0xFF:02x}",
        "nicModel": "pv",
        "alias": f"ua-nic{n}",
        **changes,
    }
    return NicSpec.from_params(params)


def nic_xml(n: int = 1, **changes: Any) -> str:
    return to_string(build_interface(nic_spec(n, **changes)))


async def new_vm(hv: SimulatedHypervisor, *nics: NicSpec) -> str:
    vm_id = str(uuid.uuid4())
    await hv.create(domain_string(build_domain(VmSpec(vm_id, f"g-{vm_id[:8]}", nics=nics))))
    return vm_id


async def live(hv: SimulatedHypervisor, vm_id: str) -> list[LiveNic]:
    return parse_nics((await hv.domain(vm_id)).xml)


async def slots(hv: SimulatedHypervisor, vm_id: str) -> list[int]:
    return [n.address.slot for n in await live(hv, vm_id) if n.address is not None]


async def eventually(condition: Any, timeout: float = 1.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


# --- The simulated hypervisor on its own --------------------------------------------------------


async def test_first_free_slot_from_0x02_and_a_tap_each() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    for n in range(1, 4):
        await hv.attach(vm_id, nic_xml(n))
    nics = await live(hv, vm_id)
    assert [n.address for n in nics] == [PciAddress(0, 0, s, 0) for s in (0x02, 0x03, 0x04)]
    assert [n.alias for n in nics] == ["ua-nic1", "ua-nic2", "ua-nic3"]
    taps = [n.tap for n in nics]
    assert all(t.startswith("vnet") for t in taps) and len(set(taps)) == 3


async def test_nics_in_the_domain_definition_are_placed_too() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv, nic_spec(1), nic_spec(2, address="0000:00:0a.0"))
    assert await slots(hv, vm_id) == [0x02, 0x0A]


async def test_explicit_slot_honoured_and_freed_slot_reused() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    await hv.attach(vm_id, nic_xml(1, address={"type": "pci", "slot": "0x0c"}))
    await hv.attach(vm_id, nic_xml(2))
    await hv.attach(vm_id, nic_xml(3))
    assert await slots(hv, vm_id) == [0x0C, 0x02, 0x03]
    await hv.detach(vm_id, "ua-nic2")
    await hv.attach(vm_id, nic_xml(4))
    assert await slots(hv, vm_id) == [0x0C, 0x03, 0x02]


async def test_same_slot_twice_is_code_27_and_not_attached() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    await hv.attach(vm_id, nic_xml(1, address="0000:00:05.0"))
    with pytest.raises(HypervisorError) as exc:
        await hv.attach(vm_id, nic_xml(2, address="0000:00:05.0"))
    assert exc.value.code == 27
    assert "0000:00:05.0" in exc.value.message
    assert [n.alias for n in await live(hv, vm_id)] == ["ua-nic1"]


async def test_slot_exhaustion_is_code_1() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    for n in range(30):  # slots 0x02..0x1f
        await hv.attach(vm_id, nic_xml(n))
    assert sorted(await slots(hv, vm_id)) == list(range(0x02, 0x20))
    with pytest.raises(HypervisorError) as exc:
        await hv.attach(vm_id, nic_xml(30))
    assert exc.value.code == 1
    assert len(await live(hv, vm_id)) == 30


async def test_missing_bridge_is_code_38() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    with pytest.raises(HypervisorError) as exc:
        await hv.attach(vm_id, nic_xml(1, device="bridge", network=MISSING_BRIDGE))
    assert exc.value.code == 38
    assert MISSING_BRIDGE in exc.value.message
    assert await live(hv, vm_id) == []


async def test_hostdev_gets_no_tap() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    await hv.attach(vm_id, nic_xml(1, device="sriov", specParams={"vfAddress": "0000:3b:02.7"}))
    (nic,) = await live(hv, vm_id)
    assert (nic.interface_type, nic.tap, nic.address) == ("hostdev", "", PciAddress(0, 0, 2, 0))


async def test_detach_of_absent_alias_is_code_99() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    await hv.attach(vm_id, nic_xml(1))
    with pytest.raises(HypervisorError) as exc:
        await hv.detach(vm_id, "ua-nosuch")
    assert exc.value.code == 99
    assert len(await live(hv, vm_id)) == 1


async def test_detach_calls_listener_with_removed() -> None:
    hv = SimulatedHypervisor()
    events: list[tuple[str, str, bool]] = []
    await hv.open(lambda vm, alias, removed: events.append((vm, alias, removed)))
    vm_id = await new_vm(hv)
    await hv.attach(vm_id, nic_xml(1))
    await hv.detach(vm_id, "ua-nic1")
    assert await live(hv, vm_id) == []
    await eventually(lambda: bool(events))
    assert events == [(vm_id, "ua-nic1", True)]


async def test_unknown_domain_is_no_such_domain() -> None:
    hv = SimulatedHypervisor()
    absent = str(uuid.uuid4())
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: hv.domain(absent),
        lambda: hv.attach(absent, nic_xml(1)),
        lambda: hv.detach(absent, "ua-nic1"),
        lambda: hv.destroy(absent),
    ]
    for call in calls:
        with pytest.raises(NoSuchDomain) as exc:
            await call()
        assert exc.value.code == 42


async def test_create_twice_is_code_9() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    with pytest.raises(HypervisorError) as exc:
        await hv.create(domain_string(build_domain(VmSpec(vm_id, "again"))))
    assert exc.value.code == 9


async def test_failed_create_leaves_no_domain() -> None:
    hv = SimulatedHypervisor()
    vm_id = str(uuid.uuid4())
    spec = VmSpec(vm_id, "g", nics=(nic_spec(1, device="bridge", network=MISSING_BRIDGE),))
    with pytest.raises(HypervisorError) as exc:
        await hv.create(domain_string(build_domain(spec)))
    assert exc.value.code == 38
    with pytest.raises(NoSuchDomain):
        await hv.domain(vm_id)


async def test_generated_aliases_stay_unique() -> None:
    hv = SimulatedHypervisor()
    vm_id = await new_vm(hv)
    bare = "<interface type='ethernet'><mac address='00:1a:4a:00:00:0{}'/><model type='virtio'/></interface>"
    for n in range(2):
        await hv.attach(vm_id, bare.format(n))
    await hv.detach(vm_id, "net0")
    await hv.attach(vm_id, bare.format(2))
    aliases = [n.alias for n in await live(hv, vm_id)]
    assert len(set(aliases)) == len(aliases), aliases


# --- NicService on the simulated hypervisor -----------------------------------------------------


async def service(hv: SimulatedHypervisor | None = None, timeout: float = 1.0) -> tuple[NicService, str]:
    hv = hv or SimulatedHypervisor()
    nics = NicService(hv, PortMirror(hv, SimulatedHostNet(hv)), unplug_timeout=timeout)
    await hv.open(nics.on_device_event)
    return nics, await new_vm(hv)


def wire_error(exc: pytest.ExceptionInfo[WireError], code: int) -> dict[str, object]:
    assert exc.value.error.code == code, exc.value.message
    return exc.value.data


async def test_hotplug_returns_the_placed_device() -> None:
    nics, vm_id = await service()
    result = await nics.hotplug(vm_id, nic_spec(1, nicModel="e1000", bootOrder=2))
    assert result.vm_id == vm_id
    placed = result.nic
    assert placed.tap.startswith("vnet")
    assert dataclasses.replace(placed, tap="") == PlacedNic(
        alias="ua-nic1",
        mac="00:1a:4a:16:00:01",
        device="bridgeless",
        model="e1000",
        network="",
        address=PciAddress(0, 0, 0x02, 0),
        tap="",
        link_active=True,
        boot_order=2,
    )
    assert [n.placed() for n in parse_nics((await nics.domain(vm_id)).xml)] == [placed]


async def test_hotplug_at_requested_slot() -> None:
    nics, vm_id = await service()
    result = await nics.hotplug(vm_id, nic_spec(1, address="0000:00:1f.0"))
    assert result.nic.address == PciAddress(0, 0, 0x1F, 0)


async def test_hotunplug_by_alias_and_by_mac() -> None:
    nics, vm_id = await service()
    await nics.hotplug(vm_id, nic_spec(1))
    await nics.hotplug(vm_id, nic_spec(2))
    assert await nics.hotunplug(vm_id, NicRef("ua-nic1", None)) == HotunplugAnswer(
        vm_id, "ua-nic1", "00:1a:4a:16:00:01"
    )
    assert await nics.hotunplug(vm_id, NicRef(None, "00:1a:4a:16:00:02")) == HotunplugAnswer(
        vm_id, "ua-nic2", "00:1a:4a:16:00:02"
    )
    assert parse_nics((await nics.domain(vm_id)).xml) == []


async def test_unplug_of_unknown_alias_is_50() -> None:
    nics, vm_id = await service()
    await nics.hotplug(vm_id, nic_spec(1))
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(vm_id, NicRef("ua-nosuch", None))
    assert wire_error(exc, errors.HOTUNPLUG_NIC.code) == failure_data(reason=UnplugReason.NO_SUCH_DEVICE)
    assert "ua-nosuch" in exc.value.message
    assert len(parse_nics((await nics.domain(vm_id)).xml)) == 1


async def test_unplug_by_ambiguous_mac_is_50() -> None:
    hv = SimulatedHypervisor()
    nics, vm_id = await service(hv)
    await hv.attach(vm_id, nic_xml(1))
    await hv.attach(vm_id, nic_xml(1, alias="ua-twin"))
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(vm_id, NicRef(None, "00:1a:4a:16:00:01"))
    wire_error(exc, errors.HOTUNPLUG_NIC.code)
    assert "by alias" in exc.value.message
    assert len(parse_nics((await nics.domain(vm_id)).xml)) == 2


async def test_unknown_vm_is_1() -> None:
    nics, _ = await service()
    absent = str(uuid.uuid4())
    with pytest.raises(WireError) as exc:
        await nics.hotplug(absent, nic_spec(1))
    wire_error(exc, errors.NO_VM.code)
    assert absent in exc.value.message
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(absent, NicRef("ua-nic1", None))
    wire_error(exc, errors.NO_VM.code)


async def test_plug_refused_by_libvirt_is_49_with_libvirt_code() -> None:
    nics, vm_id = await service()
    with pytest.raises(WireError) as exc:
        await nics.hotplug(vm_id, nic_spec(1, device="bridge", network=MISSING_BRIDGE))
    assert wire_error(exc, errors.HOTPLUG_NIC.code) == failure_data(libvirt_code=38)
    assert MISSING_BRIDGE in exc.value.message
    assert parse_nics((await nics.domain(vm_id)).xml) == []


async def test_plug_at_taken_slot_is_49_with_libvirt_code_27() -> None:
    nics, vm_id = await service()
    await nics.hotplug(vm_id, nic_spec(1, address="0000:00:04.0"))
    with pytest.raises(WireError) as exc:
        await nics.hotplug(vm_id, nic_spec(2, address="0000:00:04.0"))
    assert wire_error(exc, errors.HOTPLUG_NIC.code) == failure_data(libvirt_code=27)


async def test_plug_with_alias_or_mac_in_use_is_49() -> None:
    nics, vm_id = await service()
    await nics.hotplug(vm_id, nic_spec(1))
    with pytest.raises(WireError) as exc:
        await nics.hotplug(vm_id, nic_spec(2, alias="ua-nic1"))
    wire_error(exc, errors.HOTPLUG_NIC.code)
    assert "alias ua-nic1" in exc.value.message
    with pytest.raises(WireError) as exc:
        await nics.hotplug(vm_id, nic_spec(1, alias="ua-other"))
    wire_error(exc, errors.HOTPLUG_NIC.code)
    assert "MAC 00:1a:4a:16:00:01" in exc.value.message
    assert len(parse_nics((await nics.domain(vm_id)).xml)) == 1


async def test_unplug_timeout_is_50_and_late_removal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vdsm_agent.nics")
    nics, vm_id = await service(SimulatedHypervisor(removal_delay=0.05), timeout=0.005)
    await nics.hotplug(vm_id, nic_spec(1))
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    assert wire_error(exc, errors.HOTUNPLUG_NIC.code) == failure_data(reason=UnplugReason.TIMEOUT)
    late = f"VM {vm_id} released device ua-nic1 after its unplug call had given up"
    await eventually(lambda: late in caplog.messages)


class _RefusingGuest(SimulatedHypervisor):
    """A guest that answers every unplug request with DEVICE_REMOVAL_FAILED."""

    async def detach(self, vm_id: str, alias: str) -> None:
        self._get(vm_id)
        assert self._listener is not None
        asyncio.get_running_loop().call_soon(self._listener, vm_id, alias, False)


async def test_unplug_refused_by_guest_is_50() -> None:
    nics, vm_id = await service(_RefusingGuest())
    await nics.hotplug(vm_id, nic_spec(1))
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    assert wire_error(exc, errors.HOTUNPLUG_NIC.code) == failure_data(reason=UnplugReason.REFUSED)
    assert len(parse_nics((await nics.domain(vm_id)).xml)) == 1


async def test_plugging_the_same_nic_again_is_idempotent() -> None:
    """A retry after a lost answer finds the NIC there and gets it back, not an error."""
    nics, vm_id = await service()
    first = await nics.hotplug(vm_id, nic_spec(1))
    again = await nics.hotplug(vm_id, nic_spec(1))
    assert again == first
    assert len(parse_nics((await nics.domain(vm_id)).xml)) == 1
    with pytest.raises(WireError) as other_mac:  # same alias, another MAC: a different NIC
        await nics.hotplug(vm_id, nic_spec(1, macAddr="00:1a:4a:16:00:99"))
    assert "alias ua-nic1" in other_mac.value.message
