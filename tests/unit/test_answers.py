"""The agent's answers survive the wire: what the agent builds, the engine reads back equal;
a malformed answer is refused with a ParamError naming the field (shared_schema/answers.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from shared_schema import errors
from shared_schema.answers import (
    VM_PAUSED,
    VM_UP,
    HotplugAnswer,
    HotunplugAnswer,
    PlacedNic,
    UnplugReason,
    VmStats,
    VmStatus,
    device_hash,
    failure_data,
    unplug_reason,
)
from shared_schema.errors import ParamError
from shared_schema.nic import PciAddress
from vdsm_agent.hypervisor import Domain
from vdsm_agent.live_xml import LiveNic, parse_nics
from vdsm_agent.vms import stats, status

VM_ID = "6f1b7c1e-3d5a-4a55-9b0c-2f6e8d7a9b10"

# Every field differs from PlacedNic's defaults (but the second NIC's address, which libvirt has
# not chosen yet), so that a field lost on the way fails the round trip.
LIVE_DOMAIN = f"""
<domain type='qemu' id='3'>
  <name>answers</name>
  <uuid>{VM_ID}</uuid>
  <devices>
    <interface type='direct'>
      <mac address='00:1a:4a:16:01:61'/>
      <source dev='eth1' mode='bridge'/>
      <target dev='macvtap2'/>
      <model type='e1000e'/>
      <link state='down'/>
      <boot order='3'/>
      <alias name='ua-placed'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x1c' function='0x0'/>
    </interface>
    <interface type='ethernet'>
      <mac address='00:1a:4a:16:01:62'/>
      <target dev='vnet9'/>
      <model type='rtl8139'/>
      <link state='down'/>
      <boot order='4'/>
      <alias name='ua-unplaced'/>
    </interface>
  </devices>
</domain>
"""

PLACED = PlacedNic(
    alias="ua-placed",
    mac="00:1a:4a:16:01:61",
    device="vnlink",
    model="e1000e",
    network="eth1",
    address=PciAddress(0, 0, 0x1C, 0),
    tap="macvtap2",
    link_active=False,
    boot_order=3,
)
UNPLACED = PlacedNic(
    alias="ua-unplaced",
    mac="00:1a:4a:16:01:62",
    device="bridgeless",
    model="rtl8139",
    network="",
    address=None,
    tap="vnet9",
    link_active=False,
    boot_order=4,
)


def wire(params: Any) -> Any:
    """What the other side receives: the params through JSON."""
    return json.loads(json.dumps(params))


@pytest.fixture(scope="module")
def live() -> list[LiveNic]:
    return parse_nics(LIVE_DOMAIN)


def test_the_agent_reports_libvirts_view_as_placed_nics(live: list[LiveNic]) -> None:
    assert [n.placed() for n in live] == [PLACED, UNPLACED]


@pytest.mark.parametrize("index", [0, 1], ids=["with-pci-address", "without-pci-address"])
def test_placed_nic_round_trip(live: list[LiveNic], index: int) -> None:
    placed = live[index].placed()
    assert PlacedNic.from_params(wire(placed.to_params())) == placed


def test_hotplug_answer_round_trip(live: list[LiveNic]) -> None:
    answer = HotplugAnswer(VM_ID, live[0].placed())
    assert HotplugAnswer.from_params(wire(answer.to_params())) == answer


def test_hotunplug_answer_round_trip() -> None:
    answer = HotunplugAnswer(VM_ID, "ua-placed", "00:1a:4a:16:01:61")
    assert HotunplugAnswer.from_params(wire(answer.to_params())) == answer


def test_vm_stats_round_trip() -> None:
    answer = stats(Domain(VM_ID, "answers", VM_PAUSED, LIVE_DOMAIN))
    assert answer == VmStats(VM_ID, "answers", VM_PAUSED, (PLACED, UNPLACED), device_hash((PLACED, UNPLACED)))
    assert VmStats.from_params(wire(answer.to_params())) == answer


def test_vm_status_round_trip_carries_the_same_hash_as_the_full_stats() -> None:
    domain = Domain(VM_ID, "answers", VM_UP, LIVE_DOMAIN)
    answer = status(domain)
    assert answer == VmStatus(VM_ID, "answers", VM_UP, stats(domain).device_hash)
    assert wire(answer.to_params()) == {"vmId": VM_ID, "vmName": "answers", "status": "Up", "hash": answer.device_hash}
    assert VmStatus.from_params(wire(answer.to_params())) == answer


def test_the_device_hash_is_equal_exactly_when_the_devices_are() -> None:
    assert device_hash((PLACED, UNPLACED)) == device_hash((UNPLACED, PLACED))  # libvirt's order does not matter
    assert device_hash(()) == device_hash([])
    others = [
        (PLACED,),
        (PLACED, dataclasses.replace(UNPLACED, address=PciAddress(0, 0, 0x05, 0))),
        (PLACED, dataclasses.replace(UNPLACED, link_active=True)),
        (PLACED, dataclasses.replace(UNPLACED, tap="vnet10")),
    ]
    assert len({device_hash((PLACED, UNPLACED)), *(device_hash(o) for o in others)}) == len(others) + 1


def test_failure_data_round_trip() -> None:
    data = wire(failure_data(reason=UnplugReason.TIMEOUT, libvirt_code=38))
    assert data == {"reason": "timeout", "libvirtCode": 38}  # the wire form docs/agent.md shows
    assert unplug_reason(data) is UnplugReason.TIMEOUT
    assert failure_data(libvirt_code=27) == {"libvirtCode": 27}
    assert unplug_reason(failure_data(libvirt_code=27)) is None


def _refused(parse: Any, value: Any) -> ParamError:
    with pytest.raises(ParamError) as exc:
        parse(value)
    return exc.value


def _hotplug_params(**nic_changes: Any) -> dict[str, Any]:
    params = HotplugAnswer(VM_ID, PLACED).to_params()
    params["nic"].update(nic_changes)
    return params


def test_a_placed_nic_without_alias_is_refused() -> None:
    params = _hotplug_params()
    del params["nic"]["alias"]
    refused = _refused(HotplugAnswer.from_params, params)
    assert refused.error is errors.MISSING_PARAMETER
    assert refused.detail == "result.nic.alias"


@pytest.mark.parametrize("mac", ["zz", "00:1a:4a:16:01", 61, "01:00:5e:00:00:01"], ids=str)
def test_a_bad_mac_is_refused(mac: Any) -> None:
    refused = _refused(HotplugAnswer.from_params, _hotplug_params(macAddr=mac))
    assert refused.error is errors.INVALID_PARAMETER
    assert refused.detail.startswith("result.nic.macAddr: ")
    bad_unplug = {"vmId": VM_ID, "nic": {"alias": "ua-placed", "macAddr": mac}}
    assert _refused(HotunplugAnswer.from_params, bad_unplug).detail.startswith("result.nic.macAddr: ")


@pytest.mark.parametrize(
    ("part", "value"), [("slot", "0x20"), ("bus", "0x100"), ("function", "0x8"), ("domain", "0x10000")]
)
def test_an_address_out_of_range_is_refused(part: str, value: str) -> None:
    address = {**PciAddress(0, 0, 0x1C, 0).to_params(), part: value}
    refused = _refused(HotplugAnswer.from_params, _hotplug_params(address=address))
    assert refused.error is errors.INVALID_PARAMETER
    assert refused.detail.startswith(f"result.nic.address.{part}: ") and "out of range" in refused.detail


@pytest.mark.parametrize(
    "nics", [{"ua-placed": PLACED.to_params()}, PLACED.to_params(), "ua-placed"], ids=["by-alias", "one-nic", "text"]
)
def test_vm_stats_whose_nics_are_not_a_list_are_refused(nics: Any) -> None:
    params = {**VmStats(VM_ID, "answers", "Up").to_params(), "nics": nics}
    refused = _refused(VmStats.from_params, params)
    assert refused.error is errors.INVALID_PARAMETER
    assert refused.detail.startswith("result.nics: expected a list")


def test_a_malformed_nic_inside_vm_stats_is_named_by_its_index() -> None:
    second = {**UNPLACED.to_params(), "macAddr": "zz"}
    params = {**VmStats(VM_ID, "answers", "Up").to_params(), "nics": [PLACED.to_params(), second]}
    refused = _refused(VmStats.from_params, params)
    assert refused.error is errors.INVALID_PARAMETER
    assert refused.detail.startswith("result.nics[1].macAddr: ")


def test_the_stats_of_a_vm_libvirt_has_not_started_are_read_with_nics_without_alias() -> None:
    """libvirt gives devices their aliases only while a domain runs."""
    defined = {**UNPLACED.to_params(), "alias": ""}
    params = {**VmStats(VM_ID, "answers", "Down").to_params(), "nics": [defined]}
    assert VmStats.from_params(params).nics[0].alias == ""
