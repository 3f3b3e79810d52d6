"""The API shows and reads oVirt v4 shapes, refuses malformed bodies naming the field, and hosts get valid NIC specs."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from engine.api import representation as rep
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import Cluster, Disk, Host, Network, NetworkQos, Nic, QosRate, Version, Vm, VnicProfile
from engine.services.disks import DiskFields
from engine.services.hosts_calls import alias_of, nic_spec, vm_spec
from engine.services.nics import NicFields
from engine.services.profiles import NO_QOS, ProfileFields
from shared_schema.nic import NicSpec, PciAddress
from shared_schema.vm import VmSpec
from vdsm_agent.interface_xml import build_interface, to_string

PREFIXES = ["/ovirt-engine/api", "/api"]
VM_ID = "6f1b7c1e-3d5a-4a55-9b0c-2f6e8d7a9b10"
NIC_ID = "0c5d7e0a-8a4b-4f6e-9d1c-3b2a1f0e9d8c"
MAC = "56:6f:1a:00:00:2a"
GIB = 1024**3


def make_vm(**changes: Any) -> Vm:
    fields: dict[str, Any] = {
        "id": VM_ID,
        "name": "web-01",
        "cluster_id": "c1",
        "os_type": "rhel_6x64",
        "status": "up",
        "memory_bytes": 2 * GIB,
        "host_id": "h1",
        "kernel": "vmlinuz",
        "initrd": "initrd.img",
        "cmdline": "console=ttyS0",
        "custom_properties": {"console_log": "/var/log/web-01.log"},
    }
    fields.update(changes)
    return Vm(**fields)


def make_nic(**changes: Any) -> Nic:
    fields: dict[str, Any] = {
        "id": NIC_ID,
        "vm_id": VM_ID,
        "name": "nic1",
        "mac": MAC,
        "model": "virtio",
        "profile_id": "p1",
        "linked": True,
        "plugged": True,
        "address": PciAddress(0, 0, 0x0C, 0),
        "alias": "ua-nic1",
        "network_name": "storage-net",
        "bridge": "br-storage",
        "port_mirroring": False,
    }
    fields.update(changes)
    return Nic(**fields)


def invalid(call: Any, field: str) -> EngineError:
    with pytest.raises(EngineError) as caught:
        call()
    err = caught.value
    assert err.kind is errors.INVALID, err.kind.name
    assert err.kind.status == 400
    assert field in err.detail, err.detail
    return err


# --- objects as JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_nic_json_is_ovirts_shape(prefix: str) -> None:
    base = f"{prefix}/vms/{VM_ID}/nics/{NIC_ID}"
    assert rep.nic_json(prefix, make_nic()) == {
        "id": NIC_ID,
        "href": base,
        "name": "nic1",
        "interface": "virtio",
        "mac": {"address": MAC},
        "linked": True,
        "plugged": True,
        "vm": {"id": VM_ID, "href": f"{prefix}/vms/{VM_ID}"},
        "vnic_profile": {"id": "p1", "href": f"{prefix}/vnicprofiles/p1"},
        "address": {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x0c", "function": "0x0"},
        "actions": {
            "link": [
                {"rel": "activate", "href": f"{base}/activate"},
                {"rel": "deactivate", "href": f"{base}/deactivate"},
            ]
        },
        "link": [
            {"rel": "networkfilterparameters", "href": f"{base}/networkfilterparameters"},
            {"rel": "reporteddevices", "href": f"{base}/reporteddevices"},
            {"rel": "statistics", "href": f"{base}/statistics"},
        ],
    }


def test_nic_json_shows_false_flags() -> None:
    body = rep.nic_json("/api", make_nic(linked=False, plugged=False))
    assert (body["linked"], body["plugged"]) == (False, False)


def test_nic_json_has_no_profile_link_without_a_profile() -> None:
    body = rep.nic_json("/api", make_nic(profile_id=None))
    assert "vnic_profile" not in body


def test_nic_json_has_no_address_while_unknown() -> None:
    body = rep.nic_json("/api", make_nic(address=None))
    assert "address" not in body


def test_nic_json_shows_the_address_in_slot_zero() -> None:
    body = rep.nic_json("/api", make_nic(address=PciAddress(0, 0, 0, 0)))
    assert body["address"]["slot"] == "0x00"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_vm_json_is_ovirts_shape(prefix: str) -> None:
    assert rep.vm_json(prefix, make_vm()) == {
        "id": VM_ID,
        "href": f"{prefix}/vms/{VM_ID}",
        "name": "web-01",
        "status": "up",
        "memory": 2 * GIB,
        "cluster": {"id": "c1", "href": f"{prefix}/clusters/c1"},
        "os": {
            "type": "rhel_6x64",
            "kernel": "vmlinuz",
            "initrd": "initrd.img",
            "cmdline": "console=ttyS0",
        },
        "bios": {"type": "i440fx_sea_bios"},
        "custom_properties": {"custom_property": [{"name": "console_log", "value": "/var/log/web-01.log"}]},
        "actions": {
            "link": [
                {"rel": "start", "href": f"{prefix}/vms/{VM_ID}/start"},
                {"rel": "stop", "href": f"{prefix}/vms/{VM_ID}/stop"},
            ]
        },
        "link": [
            {"rel": "nics", "href": f"{prefix}/vms/{VM_ID}/nics"},
            {"rel": "diskattachments", "href": f"{prefix}/vms/{VM_ID}/diskattachments"},
        ],
        "host": {"id": "h1", "href": f"{prefix}/hosts/h1"},
    }


def test_a_vm_that_is_down_shows_no_host() -> None:
    body = rep.vm_json("/api", make_vm(status="down", host_id=None))
    assert "host" not in body
    assert body["status"] == "down"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_cluster_json_shows_the_version(prefix: str) -> None:
    cluster = Cluster(id="c1", name="prod-east", version=Version(3, 1), description="east", data_center_id="d1")
    assert rep.cluster_json(prefix, cluster) == {
        "id": "c1",
        "href": f"{prefix}/clusters/c1",
        "name": "prod-east",
        "description": "east",
        "version": {"major": 3, "minor": 1},
        "data_center": {"id": "d1", "href": f"{prefix}/datacenters/d1"},
        "link": [{"rel": "networks", "href": f"{prefix}/clusters/c1/networks"}],
    }


@pytest.mark.parametrize("prefix", PREFIXES)
def test_host_json_links_its_cluster(prefix: str) -> None:
    host = Host(id="h1", name="hyp-7", cluster_id="c1", address="192.0.2.7", port=54321, status="up")
    assert rep.host_json(prefix, host) == {
        "id": "h1",
        "href": f"{prefix}/hosts/h1",
        "name": "hyp-7",
        "address": "192.0.2.7",
        "port": 54321,
        "status": "up",
        "cluster": {"id": "c1", "href": f"{prefix}/clusters/c1"},
    }


@pytest.mark.parametrize("prefix", PREFIXES)
def test_network_json_links_its_data_center_and_clusters(prefix: str) -> None:
    network = Network(id="n1", name="storage-net", data_center_id="d1", bridge="br-storage",
                      cluster_ids=frozenset({"c2", "c1"}))  # fmt: skip
    assert rep.network_json(prefix, network) == {
        "id": "n1",
        "href": f"{prefix}/networks/n1",
        "name": "storage-net",
        "bridge": "br-storage",
        "data_center": {"id": "d1", "href": f"{prefix}/datacenters/d1"},
        "clusters": {"cluster": [{"id": c, "href": f"{prefix}/clusters/{c}"} for c in ("c1", "c2")]},
        "usages": {"usage": ["vm"]},
        "link": [{"rel": "vnicprofiles", "href": f"{prefix}/networks/n1/vnicprofiles"}],
    }


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("mirroring", [True, False])
def test_profile_json_links_its_network(prefix: str, mirroring: bool) -> None:
    profile = VnicProfile(id="p1", name="storage", network_id="n1", port_mirroring=mirroring)
    assert rep.profile_json(prefix, profile) == {
        "id": "p1",
        "href": f"{prefix}/vnicprofiles/p1",
        "name": "storage",
        "description": "",
        "port_mirroring": mirroring,
        "pass_through": {"mode": "disabled"},
        "network": {"id": "n1", "href": f"{prefix}/networks/n1"},
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "m", "network": {"id": "n1"}, "port_mirroring": "true"},
         ProfileFields(name="m", network_id="n1", port_mirroring=True)),
        ({"pass_through": {"mode": "enabled"}, "qos": {"id": "q1"}}, ProfileFields(pass_through=True, qos_id="q1")),
        ({"pass_through": {"mode": "disabled"}, "qos": {}}, ProfileFields(pass_through=False, qos_id=NO_QOS)),
        ({"description": "d"}, ProfileFields(description="d")),
    ],
)  # fmt: skip
def test_profile_fields_read_ovirts_shape(body: dict[str, Any], fields: ProfileFields) -> None:
    assert rep.profile_fields(body) == fields


@pytest.mark.parametrize(
    ("body", "field"),
    [({"pass_through": {"mode": "on"}}, "pass_through.mode"), ({"pass_through": "enabled"}, "pass_through"),
     ({"port_mirroring": "yes"}, "port_mirroring"), ({"qos": {"id": 5}}, "qos.id"), ({"qos": "gold"}, "qos")],
)  # fmt: skip
def test_profile_fields_refuse_a_wrong_shape_naming_the_field(body: dict[str, Any], field: str) -> None:
    invalid(lambda: rep.profile_fields(body), field)


def test_qos_fields_take_numbers_or_their_digits() -> None:
    fields = rep.qos_fields({"name": "gold", "type": "network", "inbound_average": "10", "inbound_peak": 20})
    assert (fields.inbound_average, fields.inbound_peak, fields.inbound_burst) == (10, 20, None)
    invalid(lambda: rep.qos_fields({"outbound_burst": 1.5}), "outbound_burst")


def test_a_profiles_qos_reaches_the_agent_in_libvirts_units_and_becomes_bandwidth() -> None:
    """engine (oVirt's Mbps, MB) -> specParams (kB/s, kB) -> the agent's <bandwidth>."""
    qos = NetworkQos("q1", "gold", "d1", inbound=QosRate(10, 20, 5), outbound=QosRate(1, 2, 3))
    spec = nic_spec(make_nic(qos=qos, port_mirroring=True))
    params = spec.to_params()
    assert params["specParams"] == {
        "inbound": {"average": 1250, "peak": 2500, "burst": 5000},
        "outbound": {"average": 125, "peak": 250, "burst": 3000},
    }
    assert params["promisc"] == ["br-storage"]
    built = to_string(build_interface(NicSpec.from_params(params)))
    bandwidth = etree.fromstring(built).find("bandwidth")
    assert etree.tostring(bandwidth, method="c14n") == (
        b'<bandwidth><inbound average="1250" burst="5000" peak="2500"></inbound>'
        b'<outbound average="125" burst="3000" peak="250"></outbound></bandwidth>'
    )
    assert "bandwidth" not in to_string(build_interface(nic_spec(make_nic())))


def test_collection_wraps_items_under_the_singular_name_and_names_its_root_plural() -> None:
    reply = rep.collection("vnic_profile", [{"id": "a"}])
    assert (reply.root, reply.body) == ("vnic_profiles", {"vnic_profile": [{"id": "a"}]})


# --- NIC bodies -----------------------------------------------------------------------------


def test_nic_fields_reads_every_field() -> None:
    body = {
        "name": "nic2",
        "interface": "e1000",
        "mac": {"address": MAC},
        "vnic_profile": {"id": "p1"},
        "linked": False,
        "plugged": True,
    }
    assert rep.nic_fields(body) == (
        NicFields(name="nic2", model="e1000", mac=MAC, profile_id="p1", linked=False),
        True,
    )


def test_nic_fields_leaves_what_is_not_given() -> None:
    assert rep.nic_fields({}) == (NicFields(), None)


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("false", False), ("True", True), ("FALSE", False), (True, True)]
)
def test_nic_flags_may_be_given_as_text(text: object, value: bool) -> None:
    fields, plugged = rep.nic_fields({"linked": text, "plugged": text})
    assert (fields.linked, plugged) == (value, value)


BAD_NIC_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("name not text", {"name": 5}, "name"),
    ("interface not text", {"interface": ["virtio"]}, "interface"),
    ("mac not an object", {"mac": MAC}, "mac"),
    ("mac.address not text", {"mac": {"address": 0x566F1A00002A}}, "mac.address"),
    ("profile not an object", {"vnic_profile": "p1"}, "vnic_profile"),
    ("profile without id", {"vnic_profile": {"name": "storage"}}, "vnic_profile.id"),
    ("profile id not text", {"vnic_profile": {"id": 7}}, "vnic_profile.id"),
    ("linked as a word", {"linked": "yes"}, "linked"),
    ("linked as a number", {"linked": 1}, "linked"),
    ("plugged as a word", {"plugged": "maybe"}, "plugged"),
    ("plugged as a number", {"plugged": 0}, "plugged"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in BAD_NIC_BODIES], ids=[c[0] for c in BAD_NIC_BODIES])
def test_nic_fields_refuses_wrong_types_naming_the_field(body: dict[str, Any], field: str) -> None:
    invalid(lambda: rep.nic_fields(body), field)


# --- VM bodies -----------------------------------------------------------------------------


def test_a_minimal_vm_body_gets_defaults() -> None:
    vm = rep.vm_from_body({"name": "web-01", "cluster": {"id": "c1"}})
    assert vm == Vm(
        id="", name="web-01", cluster_id="c1", os_type="other", status="down", memory_bytes=128 * 1024 * 1024
    )


def test_vm_from_body_reads_every_field() -> None:
    body = {
        "name": "web-01",
        "cluster": {"id": "c1"},
        "memory": str(2 * GIB),
        "os": {"type": "rhel_6x64", "kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "quiet"},
        "custom_properties": {"custom_property": [{"name": "console_log", "value": "/tmp/c.log"}, {"name": "x"}]},
    }
    vm = rep.vm_from_body(body)
    assert (vm.name, vm.cluster_id, vm.memory_bytes, vm.status) == ("web-01", "c1", 2 * GIB, "down")
    assert (vm.os_type, vm.kernel, vm.initrd, vm.cmdline) == ("rhel_6x64", "vmlinuz", "initrd.img", "quiet")
    assert vm.custom_properties == {"console_log": "/tmp/c.log", "x": ""}
    assert vm.host_id is None


def test_a_vm_round_trips_through_its_json() -> None:
    vm = make_vm(id="", status="down", host_id=None)
    assert rep.vm_from_body(rep.vm_json("/api", vm)) == vm
    q35 = make_vm(id="", status="down", host_id=None, bios_type="q35_sea_bios", custom_emulated_machine="pc-q35-7.2")
    assert rep.vm_from_body(rep.vm_json("/api", q35)) == q35


@pytest.mark.parametrize(
    ("body", "bios", "machine"),
    [
        ({}, "i440fx_sea_bios", "pc"),
        ({"bios": {"type": "cluster_default"}}, "i440fx_sea_bios", "pc"),
        ({"bios": {"type": "q35_sea_bios"}}, "q35_sea_bios", "q35"),
        ({"bios": {"type": "i440fx_sea_bios"}}, "i440fx_sea_bios", "pc"),
        ({"custom_emulated_machine": "pc-q35-7.2"}, "q35_sea_bios", "pc-q35-7.2"),
        ({"bios": {}, "custom_emulated_machine": "q35"}, "q35_sea_bios", "q35"),
        ({"custom_emulated_machine": "pc-i440fx-7.2"}, "i440fx_sea_bios", "pc-i440fx-7.2"),
    ],
)
def test_a_vm_is_q35_by_its_bios_type_or_its_custom_machine(body: dict[str, Any], bios: str, machine: str) -> None:
    vm = rep.vm_from_body({"name": "web-01", "cluster": {"id": "c1"}, **body})
    assert (vm.bios_type, vm.machine, vm.q35) == (bios, machine, "q35" in machine)
    shown = rep.vm_json("/api", vm)
    assert shown["bios"] == {"type": bios}
    assert shown.get("custom_emulated_machine") == body.get("custom_emulated_machine")


def test_vm_spec_sends_the_machine_only_when_it_is_not_i440fx() -> None:
    assert "emulatedMachine" not in vm_spec(make_vm(), []).to_params()
    assert vm_spec(make_vm(bios_type="q35_sea_bios"), []).to_params()["emulatedMachine"] == "q35"
    custom = vm_spec(make_vm(bios_type="q35_sea_bios", custom_emulated_machine="pc-q35-7.2"), [])
    assert VmSpec.from_params(custom.to_params()).machine == "pc-q35-7.2"


BAD_VM_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("no name", {"cluster": {"id": "c1"}}, "name"),
    ("empty name", {"name": "", "cluster": {"id": "c1"}}, "name"),
    ("no cluster", {"name": "web-01"}, "cluster"),
    ("cluster without id", {"name": "web-01", "cluster": {"name": "prod"}}, "cluster.id"),
    ("cluster as text", {"name": "web-01", "cluster": "c1"}, "cluster"),
    ("name not text", {"name": 5, "cluster": {"id": "c1"}}, "name"),
    ("memory in words", {"name": "web-01", "cluster": {"id": "c1"}, "memory": "lots"}, "memory"),
    ("memory as a list", {"name": "web-01", "cluster": {"id": "c1"}, "memory": [1]}, "memory"),
    ("os not an object", {"name": "web-01", "cluster": {"id": "c1"}, "os": "rhel_6"}, "os"),
    ("os.type not text", {"name": "web-01", "cluster": {"id": "c1"}, "os": {"type": 6}}, "os.type"),
    ("bios not an object", {"name": "web-01", "cluster": {"id": "c1"}, "bios": "q35_sea_bios"}, "bios"),
    ("bios.type not text", {"name": "web-01", "cluster": {"id": "c1"}, "bios": {"type": {}}}, "bios.type"),
    (
        "machine not text",
        {"name": "web-01", "cluster": {"id": "c1"}, "custom_emulated_machine": 35},
        "custom_emulated_machine",
    ),
    (
        "properties not a list",
        {"name": "web-01", "cluster": {"id": "c1"}, "custom_properties": {"custom_property": {"name": "x"}}},
        "custom_properties",
    ),
    (
        "property without a name",
        {"name": "web-01", "cluster": {"id": "c1"}, "custom_properties": {"custom_property": [{"value": "x"}]}},
        "custom_properties",
    ),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in BAD_VM_BODIES], ids=[c[0] for c in BAD_VM_BODIES])
def test_vm_from_body_refuses_a_malformed_body_naming_the_field(body: dict[str, Any], field: str) -> None:
    invalid(lambda: rep.vm_from_body(body), field)


# Whole numbers only; the range (at least 16 MiB) is the rules' (tests/unit/test_input_limits.py).
@pytest.mark.parametrize("memory", [True, 1.5, 1e300, "1e9", "0x10", None])
def test_vm_from_body_refuses_a_memory_that_is_not_a_size(memory: object) -> None:
    invalid(lambda: rep.vm_from_body({"name": "web-01", "cluster": {"id": "c1"}, "memory": memory}), "memory")


def test_a_null_custom_property_value_is_empty() -> None:
    body = {
        "name": "web-01",
        "cluster": {"id": "c1"},
        "custom_properties": {"custom_property": [{"name": "x", "value": None}]},
    }
    assert rep.vm_from_body(body).custom_properties == {"x": ""}


@pytest.mark.parametrize(
    ("body", "version"),
    [
        ({"version": {"major": 3, "minor": 1}}, Version(3, 1)),
        ({"version": {"major": "4", "minor": "2"}}, Version(4, 2)),
        ({}, Version(4, 7)),
    ],
)
def test_version_from_body(body: dict[str, Any], version: Version) -> None:
    assert rep.version_from_body(body) == version


@pytest.mark.parametrize(
    "version", [{"major": 4}, {"minor": 1}, {"major": "four", "minor": 1}, {"major": None, "minor": 1}, "4.7"]
)
def test_version_from_body_refuses_a_malformed_version(version: object) -> None:
    invalid(lambda: rep.version_from_body({"version": version}), "version")


# --- calls to hosts ---------------------------------------------------------------------------


def test_nic_spec_maps_every_field() -> None:
    assert nic_spec(make_nic()) == NicSpec(
        device="bridge",
        mac=MAC,
        model="virtio",
        alias="ua-nic1",
        network="br-storage",
        address=PciAddress(0, 0, 0x0C, 0),
        promisc=(),
        link_active=True,
    )


def test_a_nic_without_alias_gets_ua_and_its_id() -> None:
    nic = make_nic(alias="")
    assert alias_of(nic) == f"ua-{NIC_ID}"
    assert nic_spec(nic).alias == f"ua-{NIC_ID}"


def test_port_mirroring_mirrors_the_nics_own_bridge() -> None:
    assert nic_spec(make_nic(port_mirroring=True)).promisc == ("br-storage",)


def test_an_unlinked_nic_is_sent_with_its_link_down() -> None:
    assert nic_spec(make_nic(linked=False)).link_active is False


def test_a_nic_without_address_lets_the_host_choose() -> None:
    assert nic_spec(make_nic(address=None)).address is None


@pytest.mark.parametrize(
    "nic",
    [make_nic(), make_nic(alias="", address=None, port_mirroring=True, linked=False)],
    ids=["full", "fresh"],
)
def test_the_agent_reads_back_what_the_engine_sends(nic: Nic) -> None:
    spec = nic_spec(nic)
    assert NicSpec.from_params(spec.to_params()) == spec


def test_vm_spec_sends_only_plugged_nics_and_memory_in_mib() -> None:
    plugged = make_nic()
    unplugged = make_nic(id="nic-2", name="nic2", mac="56:6f:1a:00:00:2b", alias="ua-nic2", plugged=False)
    params = vm_spec(make_vm(), [plugged, unplugged]).to_params()
    assert params == {
        "vmId": VM_ID,
        "vmName": "web-01",
        "memSize": 2048,
        "kernel": "vmlinuz",
        "initrd": "initrd.img",
        "kernelArgs": "console=ttyS0",
        "nics": [nic_spec(plugged).to_params()],
    }
    assert VmSpec.from_params(params).nics == (nic_spec(plugged),)


def test_vm_spec_sends_no_path_even_when_a_custom_property_names_one() -> None:
    """The agent names consoles itself: a console_log property (the engine's old way) is not sent."""
    params = vm_spec(make_vm(custom_properties={"console_log": "/tmp/x/victim.txt"}), []).to_params()
    assert "consoleLog" not in params and "/tmp/x/victim.txt" not in str(params)
    assert params["nics"] == []


def test_disk_fields_read_an_inline_disk_by_image_name_and_format() -> None:
    body = {"bootable": "true", "interface": "virtio", "active": True, "disk": {"name": "tiny.qcow2", "format": "cow"}}
    assert rep.disk_fields(body) == DiskFields("tiny.qcow2", "cow", "virtio", bootable=True)
    assert rep.disk_fields({"disk": {"name": "a.img", "format": "raw"}}) == DiskFields("a.img", "raw")


@pytest.mark.parametrize(
    ("body", "words"),
    [({}, "needs its disk"), ({"disk": {"id": "d1"}}, "keeps no disks apart from VMs"),
     ({"disk": {"name": "a.img"}}, "disk.format (raw or cow)"), ({"disk": {"name": 5, "format": "raw"}}, "disk.name"),
     ({"disk": {"name": "a.img", "format": "raw"}, "active": False}, "always active")],
)  # fmt: skip
def test_disk_fields_refuse_what_this_engine_cannot_keep(body: dict[str, Any], words: str) -> None:
    invalid(lambda: rep.disk_fields(body), words)


def test_a_bootable_disk_goes_to_the_host_as_a_drive_booting_first() -> None:
    disks = [Disk("d1", VM_ID, "tiny-disk.qcow2", "cow", bootable=True), Disk("d2", VM_ID, "data.img", read_only=True)]
    params = vm_spec(make_vm(kernel="", initrd=""), [], disks).to_params()
    assert params["drives"] == [
        {"device": "disk", "iface": "virtio", "format": "cow", "image": "tiny-disk.qcow2", "bootOrder": 1},
        {"device": "disk", "iface": "virtio", "format": "raw", "image": "data.img", "readonly": True},
    ]
    assert VmSpec.from_params(params).drives[0].boot_order == 1
    assert "drives" not in vm_spec(make_vm(), []).to_params()
