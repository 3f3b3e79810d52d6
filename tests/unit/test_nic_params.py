"""A malformed hotplug/unplug/create request is refused with VDSM's code and the parameter's name."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from shared_schema.errors import INVALID_PARAMETER, MISSING_PARAMETER, ParamError
from shared_schema.nic import Bandwidth, NicRef, NicSpec, PciAddress, parse_mac, parse_vm_id
from shared_schema.vm import VmSpec

MISSING, INVALID = MISSING_PARAMETER.code, INVALID_PARAMETER.code

VM_ID = "6f1b7c1e-3d5a-4a55-9b0c-2f6e8d7a9b10"
MAC = "00:1a:4a:16:01:51"
DROP = object()  # marks a key to remove from the base dict


def bridge_nic(**changes: Any) -> dict[str, Any]:
    nic: dict[str, Any] = {
        "type": "interface",
        "device": "bridge",
        "network": "ovirtmgmt",
        "macAddr": MAC,
        "nicModel": "pv",
        "alias": "ua-nic1",
    }
    nic.update(changes)
    return {k: v for k, v in nic.items() if v is not DROP}


def refused(call: Callable[[], object], code: int, name: str) -> ParamError:
    with pytest.raises(ParamError) as caught:
        call()
    err = caught.value
    assert err.error.code == code, err.message
    assert name in err.message, err.message
    return err


# --- NicSpec.from_params: refusals -------------------------------------------------------------

BAD_NICS: list[tuple[str, dict[str, Any], int, str]] = [
    ("short MAC", bridge_nic(macAddr="00:1a:4a:16:01"), INVALID, "nic.macAddr"),
    ("non-hex MAC", bridge_nic(macAddr="00:1a:4a:16:01:zz"), INVALID, "nic.macAddr"),
    ("dashed MAC", bridge_nic(macAddr="00-1a-4a-16-01-51"), INVALID, "nic.macAddr"),
    ("MAC as number", bridge_nic(macAddr=0x001A4A160151), INVALID, "nic.macAddr"),
    ("multicast MAC", bridge_nic(macAddr="01:00:5e:00:00:01"), INVALID, "nic.macAddr"),
    ("broadcast MAC", bridge_nic(macAddr="ff:ff:ff:ff:ff:ff"), INVALID, "nic.macAddr"),
    ("missing MAC", bridge_nic(macAddr=DROP), MISSING, "nic.macAddr"),
    ("unknown model", bridge_nic(nicModel="ne2k_pci"), INVALID, "nic.nicModel"),
    ("model not text", bridge_nic(nicModel=1), INVALID, "nic.nicModel"),
    ("missing model", bridge_nic(nicModel=DROP), MISSING, "nic.nicModel"),
    ("unknown device", bridge_nic(device="ovs"), INVALID, "nic.device"),
    ("missing device", bridge_nic(device=DROP), MISSING, "nic.device"),
    ("not an interface", bridge_nic(type="disk"), INVALID, "nic.type"),
    ("unknown key", bridge_nic(mtu=9000), INVALID, "mtu"),
    ("bridge without network", bridge_nic(network=DROP), MISSING, "nic.network"),
    ("bridge with empty network", bridge_nic(network=""), MISSING, "nic.network"),
    ("vnlink without network", bridge_nic(device="vnlink", network=DROP), MISSING, "nic.network"),
    ("network with a space", bridge_nic(network="br 0"), INVALID, "nic.network"),
    ("network too long", bridge_nic(network="a" * 16), INVALID, "nic.network"),
    ("network with a slash", bridge_nic(network="br/0"), INVALID, "nic.network"),
    ("sriov without vfAddress", bridge_nic(device="sriov", network=DROP), MISSING, "nic.specParams.vfAddress"),
    (
        "sriov with bad vfAddress",
        bridge_nic(device="sriov", specParams={"vfAddress": "05:10.1"}),
        INVALID,
        "nic.specParams.vfAddress",
    ),
    ("address dict with bad hex", bridge_nic(address={"type": "pci", "slot": "0xzz"}), INVALID, "nic.address.slot"),
    ("address of another type", bridge_nic(address={"type": "drive", "slot": "0x01"}), INVALID, "nic.address"),
    ("address without slot", bridge_nic(address={"type": "pci", "bus": "0x00"}), MISSING, "nic.address.slot"),
    ("address with unknown key", bridge_nic(address={"slot": "0x03", "controller": "0"}), INVALID, "controller"),
    ("address text malformed", bridge_nic(address="00:0c.0"), INVALID, "nic.address"),
    ("address text bad function", bridge_nic(address="0000:00:0c.8"), INVALID, "nic.address"),
    ("address neither dict nor text", bridge_nic(address=12), INVALID, "nic.address"),
    ("slot out of range", bridge_nic(address={"slot": "0x20"}), INVALID, "nic.address.slot"),
    ("negative slot", bridge_nic(address={"slot": -1}), INVALID, "nic.address.slot"),
    ("function out of range", bridge_nic(address={"slot": "0x03", "function": "0x8"}), INVALID, "nic.address.function"),
    ("bus out of range", bridge_nic(address={"slot": "0x03", "bus": "0x100"}), INVALID, "nic.address.bus"),
    ("domain out of range", bridge_nic(address={"slot": "0x03", "domain": 0x10000}), INVALID, "nic.address.domain"),
    ("bootOrder not a number", bridge_nic(bootOrder="first"), INVALID, "nic.bootOrder"),
    ("bootOrder negative", bridge_nic(bootOrder=-1), INVALID, "nic.bootOrder"),
    ("bootOrder boolean", bridge_nic(bootOrder=True), INVALID, "nic.bootOrder"),
    ("bootOrder fractional", bridge_nic(bootOrder=1.5), INVALID, "nic.bootOrder"),
    ("specParams not a dict", bridge_nic(specParams="fast"), INVALID, "nic.specParams"),
    ("specParams unknown key", bridge_nic(specParams={"mtu": 1500}), INVALID, "nic.specParams"),
    ("inbound not a dict", bridge_nic(specParams={"inbound": "fast"}), INVALID, "nic.specParams.inbound"),
    (
        "inbound without average",
        bridge_nic(specParams={"inbound": {"peak": 10}}),
        MISSING,
        "nic.specParams.inbound.average",
    ),
    (
        "inbound zero average",
        bridge_nic(specParams={"inbound": {"average": 0}}),
        INVALID,
        "nic.specParams.inbound.average",
    ),
    (
        "outbound negative burst",
        bridge_nic(specParams={"outbound": {"average": 10, "burst": -1}}),
        INVALID,
        "nic.specParams.outbound.burst",
    ),
    (
        "outbound peak not a number",
        bridge_nic(specParams={"outbound": {"average": 10, "peak": "lots"}}),
        INVALID,
        "nic.specParams.outbound.peak",
    ),
    (
        "inbound unknown key",
        bridge_nic(specParams={"inbound": {"average": 10, "floor": 5}}),
        INVALID,
        "nic.specParams.inbound",
    ),
    ("promisc not names", bridge_nic(promisc=5), INVALID, "nic.promisc"),
    ("promisc bad name in list", bridge_nic(promisc=["blue", "bad name"]), INVALID, "nic.promisc"),
    ("promisc empty name in text", bridge_nic(promisc="blue,,red"), INVALID, "nic.promisc"),
    ("promisc non-text in list", bridge_nic(promisc=["blue", 7]), INVALID, "nic.promisc"),
    ("portMirroring bad name", bridge_nic(portMirroring="blue;red"), INVALID, "nic.promisc"),
    ("linkActive as text", bridge_nic(linkActive="yes"), INVALID, "nic.linkActive"),
    ("alias without ua- prefix", bridge_nic(alias="net0"), INVALID, "nic.alias"),
    ("alias with nothing after ua-", bridge_nic(alias="ua-"), INVALID, "nic.alias"),
    ("alias with a dot", bridge_nic(alias="ua-a.b"), INVALID, "nic.alias"),
    ("id that makes a bad alias", bridge_nic(alias=DROP, id="a b"), INVALID, "nic.id"),
]


@pytest.mark.parametrize(("nic", "code", "name"), [c[1:] for c in BAD_NICS], ids=[c[0] for c in BAD_NICS])
def test_nic_spec_refuses(nic: dict[str, Any], code: int, name: str) -> None:
    refused(lambda: NicSpec.from_params(nic), code, name)


def test_nic_spec_missing_or_not_a_dict() -> None:
    refused(lambda: NicSpec.from_params(None), MISSING, "nic")
    refused(lambda: NicSpec.from_params([bridge_nic()]), INVALID, "nic")


def test_multicast_refusal_says_why() -> None:
    err = refused(lambda: NicSpec.from_params(bridge_nic(macAddr="01:00:5e:00:00:01")), INVALID, "nic.macAddr")
    assert "multicast" in err.message


def test_unknown_keys_are_all_named() -> None:
    err = refused(lambda: NicSpec.from_params(bridge_nic(mtu=1, vlan=2)), INVALID, "nic")
    assert "mtu" in err.message and "vlan" in err.message


# --- NicSpec.from_params: accepted forms and round trips ----------------------------------------


def test_minimal_bridge_nic() -> None:
    assert NicSpec.from_params(bridge_nic()) == NicSpec(
        device="bridge", mac=MAC, model="virtio", alias="ua-nic1", network="ovirtmgmt"
    )


@pytest.mark.parametrize("model", ["pv", "virtio"])
def test_pv_and_virtio_both_mean_virtio(model: str) -> None:
    assert NicSpec.from_params(bridge_nic(nicModel=model)).model == "virtio"


@pytest.mark.parametrize("model", ["e1000", "e1000e", "rtl8139"])
def test_other_models_pass_through(model: str) -> None:
    assert NicSpec.from_params(bridge_nic(nicModel=model)).model == model


def test_mac_is_lower_cased() -> None:
    assert NicSpec.from_params(bridge_nic(macAddr="00:1A:4A:16:01:5F")).mac == "00:1a:4a:16:01:5f"


def test_alias_from_id_or_mac() -> None:
    assert NicSpec.from_params(bridge_nic(alias=DROP, id="7f3c")).alias == "ua-7f3c"
    assert NicSpec.from_params(bridge_nic(alias=DROP)).alias == "ua-mac-001a4a160151"
    assert NicSpec.from_params(bridge_nic(alias="ua-given", id="ignored")).alias == "ua-given"


@pytest.mark.parametrize("promisc", ["blue,red", " blue , red ", ["blue", "red"], ("blue", "red")])
def test_promisc_as_text_or_list(promisc: Any) -> None:
    assert NicSpec.from_params(bridge_nic(promisc=promisc)).promisc == ("blue", "red")


def test_port_mirroring_is_accepted_as_promisc() -> None:
    assert NicSpec.from_params(bridge_nic(portMirroring="blue,red")).promisc == ("blue", "red")
    assert NicSpec.from_params(bridge_nic(portMirroring=["blue"])).promisc == ("blue",)


@pytest.mark.parametrize("empty", [None, "", []])
def test_no_promisc(empty: Any) -> None:
    assert NicSpec.from_params(bridge_nic(promisc=empty)).promisc == ()


@pytest.mark.parametrize(("given", "kept"), [(2, 2), ("3", 3), ("0x10", 16), (0, None), ("0", None), (None, None)])
def test_boot_order_forms(given: Any, kept: int | None) -> None:
    assert NicSpec.from_params(bridge_nic(bootOrder=given)).boot_order == kept


def test_network_ignored_for_bridgeless() -> None:
    assert NicSpec.from_params(bridge_nic(device="bridgeless", network="br0")).network == ""


def test_bandwidth_numbers_from_text() -> None:
    spec = NicSpec.from_params(bridge_nic(specParams={"inbound": {"average": "100", "peak": 200, "burst": None}}))
    assert spec.inbound == Bandwidth(100, 200, None)
    assert spec.outbound is None


ROUND_TRIPS: list[dict[str, Any]] = [
    bridge_nic(),
    bridge_nic(alias=DROP),
    bridge_nic(
        nicModel="e1000e",
        bootOrder=4,
        promisc="blue,red",
        linkActive=False,
        address={"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x0c", "function": "0x0"},
        specParams={"inbound": {"average": 1, "peak": 2, "burst": 3}, "outbound": {"average": 4}},
    ),
    bridge_nic(device="vnlink", network="eth1", nicModel="rtl8139"),
    bridge_nic(device="bridgeless", network=DROP, specParams={"outbound": {"average": 8, "burst": 9}}),
    bridge_nic(device="sriov", network=DROP, specParams={"vfAddress": "0000:3b:02.7"}, address="0000:00:09.0"),
]


@pytest.mark.parametrize("nic", ROUND_TRIPS, ids=["bridge", "alias-from-mac", "bridge-full", "vnlink", "bl", "sriov"])
def test_round_trip(nic: dict[str, Any]) -> None:
    spec = NicSpec.from_params(nic)
    assert NicSpec.from_params(spec.to_params()) == spec


def test_wire_form_is_the_seed_shape() -> None:
    spec = NicSpec.from_params(ROUND_TRIPS[2])
    assert spec.to_params() == {
        "type": "interface",
        "device": "bridge",
        "network": "ovirtmgmt",
        "macAddr": MAC,
        "nicModel": "e1000e",
        "alias": "ua-nic1",
        "linkActive": False,
        "bootOrder": 4,
        "promisc": ["blue", "red"],
        "address": {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x0c", "function": "0x0"},
        "specParams": {"inbound": {"average": 1, "peak": 2, "burst": 3}, "outbound": {"average": 4}},
    }


# --- PciAddress ---------------------------------------------------------------------------------


def test_pci_dict_and_text_forms_agree() -> None:
    from_dict = PciAddress.parse({"type": "pci", "domain": "0x0000", "bus": "0x3b", "slot": "0x02", "function": "0x7"})
    from_text = PciAddress.parse("0000:3b:02.7")
    assert from_dict == from_text == PciAddress(0, 0x3B, 2, 7)
    assert str(from_dict) == "0000:3b:02.7"
    assert from_dict.to_params() == {
        "type": "pci",
        "domain": "0x0000",
        "bus": "0x3b",
        "slot": "0x02",
        "function": "0x7",
    }
    assert PciAddress.parse(from_dict.to_params()) == from_dict
    assert PciAddress.parse(str(from_dict)) == from_dict


def test_pci_upper_case_text_and_numbers() -> None:
    assert PciAddress.parse("0000:3B:1F.0") == PciAddress(0, 0x3B, 0x1F, 0)
    assert PciAddress.parse({"domain": 0, "bus": 0, "slot": 31, "function": 0}) == PciAddress(0, 0, 31, 0)


def test_pci_refusals_name_the_given_parameter() -> None:
    refused(lambda: PciAddress.parse("garbage", "nic.specParams.vfAddress"), INVALID, "nic.specParams.vfAddress")
    refused(lambda: PciAddress.parse({"slot": "0x20"}, "addr"), INVALID, "addr.slot")
    refused(lambda: PciAddress.parse({"bus": "0x00"}, "addr"), MISSING, "addr.slot")
    refused(lambda: PciAddress.parse({"slot": True}, "addr"), INVALID, "addr.slot")
    refused(lambda: PciAddress.parse(["0000", "00", "0c", "0"], "addr"), INVALID, "addr")


# --- parse_mac, parse_vm_id ---------------------------------------------------------------------


def test_parse_mac() -> None:
    assert parse_mac("02:00:00:00:00:01") == "02:00:00:00:00:01"  # locally administered unicast
    assert parse_mac("AA:BB:CC:DD:EE:F0") == "aa:bb:cc:dd:ee:f0"
    refused(lambda: parse_mac("03:00:00:00:00:01"), INVALID, "macAddr")
    refused(lambda: parse_mac("aa:bb:cc:dd:ee:f0:01"), INVALID, "macAddr")
    refused(lambda: parse_mac(None, "nic.macAddr"), INVALID, "nic.macAddr")


def test_parse_vm_id() -> None:
    assert parse_vm_id(VM_ID) == VM_ID
    assert parse_vm_id(VM_ID.upper()) == VM_ID
    assert parse_vm_id("{" + VM_ID + "}") == VM_ID
    assert parse_vm_id(uuid.UUID(VM_ID)) == VM_ID
    refused(lambda: parse_vm_id(None), MISSING, "vmId")
    refused(lambda: parse_vm_id("not-a-uuid"), INVALID, "vmId")
    refused(lambda: parse_vm_id(VM_ID[:-1]), INVALID, "vmId")
    refused(lambda: parse_vm_id(42), INVALID, "vmId")


# --- NicRef (hotunplugNic) ----------------------------------------------------------------------


def test_nic_ref_by_alias_id_or_mac() -> None:
    assert NicRef.from_params({"alias": "ua-nic1", "macAddr": MAC}) == NicRef("ua-nic1", MAC)
    assert NicRef.from_params({"id": "7f3c"}) == NicRef("ua-7f3c", None)
    assert NicRef.from_params({"macAddr": "00:1A:4A:16:01:51"}) == NicRef(None, MAC)
    assert str(NicRef("ua-nic1", MAC)) == "alias ua-nic1"
    assert str(NicRef(None, MAC)) == f"MAC {MAC}"


def test_nic_ref_refusals() -> None:
    refused(lambda: NicRef.from_params(None), MISSING, "nic")
    refused(lambda: NicRef.from_params("ua-nic1"), INVALID, "nic")
    refused(lambda: NicRef.from_params({}), MISSING, "nic.alias or nic.macAddr")
    refused(lambda: NicRef.from_params({"macAddr": "nope"}), INVALID, "nic.macAddr")
    refused(lambda: NicRef.from_params({"alias": "net0"}), INVALID, "nic.alias")


# --- VmSpec.from_params (VM.create) -------------------------------------------------------------


def vm_params(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "vmId": VM_ID,
        "vmName": "demo",
        "memSize": 256,
        "kernel": "vmlinuz",
        "initrd": "initrd.img",
        "kernelArgs": "console=ttyS0",
        "nics": [bridge_nic(), bridge_nic(device="bridgeless", alias="ua-nic2", macAddr="00:1a:4a:16:01:52")],
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not DROP}


def test_vm_spec_reads_every_field() -> None:
    spec = VmSpec.from_params(vm_params(vmId=VM_ID.upper()))
    assert spec.vm_id == VM_ID
    assert (spec.name, spec.memory_mib, spec.kernel, spec.initrd, spec.cmdline) == (
        "demo",
        256,
        "vmlinuz",
        "initrd.img",
        "console=ttyS0",
    )
    assert [n.alias for n in spec.nics] == ["ua-nic1", "ua-nic2"]
    assert VmSpec.from_params(spec.to_params()) == spec


def test_vm_spec_defaults() -> None:
    spec = VmSpec.from_params({"vmId": VM_ID, "vmName": "demo"})
    assert (spec.memory_mib, spec.kernel, spec.nics) == (128, "", ())


BAD_VMS: list[tuple[str, dict[str, Any], int, str]] = [
    ("missing vmId", vm_params(vmId=DROP), MISSING, "vmId"),
    ("non-UUID vmId", vm_params(vmId="vm-1"), INVALID, "vmId"),
    ("missing vmName", vm_params(vmName=DROP), MISSING, "vmName"),
    ("empty vmName", vm_params(vmName=""), INVALID, "vmName"),
    ("vmName with slash", vm_params(vmName="a/b"), INVALID, "vmName"),
    ("vmName not text", vm_params(vmName=5), INVALID, "vmName"),
    ("unknown parameter", vm_params(vcpus=2), INVALID, "vcpus"),
    ("memSize text", vm_params(memSize="256"), INVALID, "memSize"),
    ("memSize boolean", vm_params(memSize=True), INVALID, "memSize"),
    ("memSize too small", vm_params(memSize=8), INVALID, "memSize"),
    ("kernel as a path", vm_params(kernel="/boot/vmlinuz"), INVALID, "kernel"),
    ("kernel out of the images", vm_params(kernel="../vmlinuz"), INVALID, "kernel"),
    ("initrd as '..'", vm_params(initrd=".."), INVALID, "initrd"),
    ("a console path (the agent names consoles)", vm_params(consoleLog="/tmp/x/victim.txt"), INVALID, "consoleLog"),
    ("initrd not text", vm_params(initrd=3), INVALID, "initrd"),
    ("nics not a list", vm_params(nics={"nic": 1}), INVALID, "nics"),
    ("a bad nic", vm_params(nics=[bridge_nic(macAddr="bad")]), INVALID, "nic.macAddr"),
]


@pytest.mark.parametrize(("params", "code", "name"), [c[1:] for c in BAD_VMS], ids=[c[0] for c in BAD_VMS])
def test_vm_spec_refuses(params: dict[str, Any], code: int, name: str) -> None:
    refused(lambda: VmSpec.from_params(params), code, name)


# --- Bugs: see the reasons ----------------------------------------------------------------------


def test_mac_with_trailing_newline_is_refused() -> None:
    refused(lambda: parse_mac(MAC + "\n"), INVALID, "macAddr")


def test_network_with_trailing_newline_is_refused() -> None:
    refused(lambda: NicSpec.from_params(bridge_nic(network="br0\n")), INVALID, "nic.network")


def test_alias_with_trailing_newline_is_refused() -> None:
    refused(lambda: NicSpec.from_params(bridge_nic(alias="ua-nic1\n")), INVALID, "nic.alias")


def test_pci_text_slot_out_of_range_is_refused() -> None:
    refused(lambda: PciAddress.parse("0000:00:20.0", "nic.address"), INVALID, "nic.address.slot")


def test_bandwidth_with_null_average_is_missing() -> None:
    refused(
        lambda: NicSpec.from_params(bridge_nic(specParams={"inbound": {"average": None, "peak": 5}})),
        MISSING,
        "nic.specParams.inbound.average",
    )


def test_dot_dot_network_is_refused() -> None:
    refused(lambda: NicSpec.from_params(bridge_nic(network="..")), INVALID, "nic.network")
