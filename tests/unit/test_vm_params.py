"""VM.create's emulatedMachine and drives: VDSM's names, strictly read, and what the engine sends
reads back the same on the agent."""

from __future__ import annotations

from typing import Any

import pytest

from shared_schema.errors import ParamError
from shared_schema.nic import NicSpec
from shared_schema.vm import DriveSpec, VmSpec, is_q35

VM_ID = "0a1b2c3d-0000-4000-8000-00000000000a"
MISSING, INVALID = 11, -32602


def drive(**changes: Any) -> dict[str, Any]:
    return {"device": "disk", "iface": "virtio", "format": "raw", "image": "root.img", "bootOrder": 1, **changes}


def params(**changes: Any) -> dict[str, Any]:
    return {"vmId": VM_ID, "vmName": "disky", **changes}


def refused(params: dict[str, Any], code: int, name: str) -> None:
    with pytest.raises(ParamError) as caught:
        VmSpec.from_params(params)
    assert caught.value.error.code == code
    assert caught.value.detail.startswith(name), caught.value.detail


def test_machine_and_drives_are_read_and_round_trip() -> None:
    second = drive(image="data.qcow2", format="cow", bootOrder=None, readonly=True)
    spec = VmSpec.from_params(params(emulatedMachine="q35", drives=[drive(), second]))
    assert spec.machine == "q35" and is_q35(spec.machine)
    assert spec.drives == (DriveSpec("root.img", "raw", "virtio", 1), DriveSpec("data.qcow2", "cow", readonly=True))
    assert VmSpec.from_params(spec.to_params()) == spec
    assert spec.to_params()["drives"][1] == {
        "device": "disk", "iface": "virtio", "format": "cow", "image": "data.qcow2", "readonly": True
    }  # fmt: skip


def test_defaults_are_pc_and_no_drives_and_are_not_sent() -> None:
    """An engine that knows nothing of them sends what it always sent."""
    spec = VmSpec.from_params(params())
    assert (spec.machine, spec.drives) == ("pc", ())
    assert "emulatedMachine" not in spec.to_params() and "drives" not in spec.to_params()


@pytest.mark.parametrize("machine", ["pc", "q35", "pc-i440fx-7.2", "pc-q35-7.2", "pc-q35-rhel8.6.0"])
def test_machines_accepted(machine: str) -> None:
    assert VmSpec.from_params(params(emulatedMachine=machine)).machine == machine


def test_a_boot_order_as_digits_is_a_number() -> None:
    assert VmSpec.from_params(params(drives=[drive(bootOrder="2")])).drives[0].boot_order == 2


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("machine unknown", params(emulatedMachine="virt"), INVALID, "emulatedMachine"),
    ("machine not text", params(emulatedMachine=35), INVALID, "emulatedMachine"),
    ("machine with options", params(emulatedMachine="q35,accel=kvm"), INVALID, "emulatedMachine"),
    ("drives not a list", params(drives={"image": "a"}), INVALID, "drives"),
    ("a drive not a dict", params(drives=["root.img"]), INVALID, "drives[0]"),
    ("a drive path", params(drives=[drive(path="/etc/shadow")]), INVALID, "drives[0].path"),
    ("an image as a path", params(drives=[drive(image="/var/lib/a.img")]), INVALID, "drives[0].image"),
    ("an image '..'", params(drives=[drive(image="..")]), INVALID, "drives[0].image"),
    ("no image", params(drives=[drive(image=None)]), MISSING, "drives[0].image"),
    ("no format", params(drives=[drive(format=None)]), MISSING, "drives[0].format"),
    ("format qcow2 (VDSM says cow)", params(drives=[drive(format="qcow2")]), INVALID, "drives[0].format"),
    ("format a list", params(drives=[drive(format=["raw"])]), INVALID, "drives[0].format"),
    ("iface ide", params(drives=[drive(iface="ide")]), INVALID, "drives[0].iface"),
    ("a cdrom", params(drives=[drive(device="cdrom")]), INVALID, "drives[0].device"),
    ("readonly as text", params(drives=[drive(readonly="yes")]), INVALID, "drives[0].readonly"),
    ("boot order 0.5", params(drives=[drive(bootOrder=0.5)]), INVALID, "drives[0].bootOrder"),
    ("boot order true", params(drives=[drive(bootOrder=True)]), INVALID, "drives[0].bootOrder"),
    ("boot order negative", params(drives=[drive(bootOrder=-1)]), INVALID, "drives[0].bootOrder"),
    ("an unknown drive key", params(drives=[drive(cache="none")]), INVALID, "drives[0]"),
    ("one image twice", params(drives=[drive(), drive(bootOrder=2)]), INVALID, "drives[1].image"),
    ("one boot order twice", params(drives=[drive(), drive(image="b.img")]), INVALID, "drives[1].bootOrder"),
    ("too many drives", params(drives=[drive(image=f"{i}.img", bootOrder=i + 1) for i in range(9)]), INVALID,
     "drives"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "code", "name"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused(params: dict[str, Any], code: int, name: str) -> None:
    refused(params, code, name)


def test_a_drive_may_not_take_a_nics_boot_order() -> None:
    nic = {"type": "interface", "device": "bridgeless", "macAddr": "52:54:00:00:00:01", "nicModel": "pv",
           "id": "boot", "bootOrder": 1}  # fmt: skip
    refused(params(nics=[nic], drives=[drive()]), INVALID, "drives[0].bootOrder: 1 is the boot order of NIC ua-boot")
    assert VmSpec(VM_ID, "g", nics=(NicSpec.from_params(nic),), drives=(DriveSpec("a.img", boot_order=2),))


def test_a_spec_made_in_code_is_checked_too() -> None:
    with pytest.raises(ParamError, match="emulatedMachine"):
        VmSpec(VM_ID, "g", machine="isapc")
    with pytest.raises(ParamError, match="image"):
        DriveSpec("../a.img")
    with pytest.raises(ParamError, match="format"):
        DriveSpec("a.img", "vmdk")
