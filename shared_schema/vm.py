"""The parameters of ``VM.create``: what a host needs to start a guest.

{'vmId': <uuid>, 'vmName': 'demo', 'memSize': <MiB>,
 'kernel': <image name>, 'initrd': <image name>, 'kernelArgs': 'console=ttyS0',
 'emulatedMachine': 'pc' | 'q35' | 'pc-i440fx-7.2' | 'pc-q35-7.2' ...   (absent: 'pc')
 'drives': [{'device': 'disk', 'iface': 'virtio', 'format': 'raw' | 'cow',
             'image': <image name>, 'bootOrder': 1, 'readonly': false}, ...],
 'nics': [<a hotplugNic 'nic' dict>, ...]}

No file system path ever crosses the wire: ``kernel``, ``initrd`` and a drive's ``image`` name
files of the agent's images directory (no separators, no ``..``; VDSM's drive ``path`` is refused),
and the agent writes each VM's serial console to its own log directory, named by VM id.
``emulatedMachine`` and ``drives`` are VDSM's names; a drive takes a subset of VDSM's keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared_schema.errors import ParamError
from shared_schema.nic import NicSpec, parse_vm_id

# The least memory a guest gets (MiB); the engine's API and rules use it too.
MIN_MEMORY_MIB = 16
# The longest VM name a host accepts; the engine holds every name it keeps to this limit.
VM_NAME_MAX_LENGTH = 64
IMAGE_NAME_RULE = "a file name of the host's images directory: 1-255 printable characters, no '/', not '.' or '..'"


def parse_image_name(value: Any, name: str) -> str:
    """An image's file name ('' = none), never a path."""
    if not isinstance(value, str):
        raise ParamError.invalid(name, f"expected text, got {value!r}")
    if value and (len(value) > 255 or "/" in value or value in (".", "..") or not value.isprintable()):
        raise ParamError.invalid(name, f"expected {IMAGE_NAME_RULE}, got {value!r}")
    return value


def check_vm_name(name: str) -> None:
    """1-64 printable characters, no '/': what libvirt accepts as a domain name."""
    if not name or len(name) > VM_NAME_MAX_LENGTH or "/" in name or not name.isprintable():
        shown = repr(name) if len(name) <= VM_NAME_MAX_LENGTH else f"{len(name)} characters"
        rule = f"1-{VM_NAME_MAX_LENGTH} printable characters without '/'"
        raise ParamError.invalid("vmName", f"must be {rule}, got {shown}")


def check_kernel_args(value: str) -> None:
    """Printable characters (spaces allowed): what a domain's XML can carry to the kernel."""
    if not value.isprintable():
        raise ParamError.invalid("kernelArgs", f"expected printable characters (no control characters), got {value!r}")


# VDSM's emulatedMachine: QEMU's machine aliases, or a versioned i440fx / q35 machine.
DEFAULT_MACHINE = "pc"
MACHINE_RULE = "'pc' (i440fx), 'q35', or a versioned 'pc-i440fx-…' / 'pc-q35-…'"
# The pattern is the engine's too (its API states it in the OpenAPI document).
MACHINE_PATTERN = r"pc|q35|pc-(i440fx|q35)-[a-z0-9][a-z0-9._-]{0,40}"
_MACHINE = re.compile(MACHINE_PATTERN)
# A drive's VDSM format -> libvirt's driver type.
DRIVE_FORMATS = {"raw": "raw", "cow": "qcow2"}
DRIVE_IFACES = ("virtio",)
MAX_DRIVES = 8  # each virtio disk takes a PCI slot (a PCIe root port on q35) that hot plug could use


def parse_machine(value: Any) -> str:
    if not isinstance(value, str) or not _MACHINE.fullmatch(value):
        raise ParamError.invalid("emulatedMachine", f"expected {MACHINE_RULE}, got {value!r}")
    return value


def is_q35(machine: str) -> bool:
    """Whether a machine type (VDSM's emulatedMachine, or libvirt's live one) is PCIe (q35)."""
    return "q35" in machine


def _boot_order(value: Any, name: str) -> int | None:
    """A boot order as the NICs take it: a number (or its digits), 1 or more; absent, 0 or '' = none."""
    if isinstance(value, bool):
        raise ParamError.invalid(name, f"expected a number of 1 or more, got {value!r}")
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise ParamError.invalid(name, f"expected a number of 1 or more, got {value!r}")
    return value


def _check_drive(image: Any, fmt: Any, iface: Any, name: str) -> None:
    if image in (None, ""):
        raise ParamError.missing(f"{name}.image")
    parse_image_name(image, f"{name}.image")
    if fmt is None:
        raise ParamError.missing(f"{name}.format")
    if not isinstance(fmt, str) or fmt not in DRIVE_FORMATS:
        raise ParamError.invalid(f"{name}.format", f"expected 'raw' or 'cow' (qcow2), got {fmt!r}")
    if not isinstance(iface, str) or iface not in DRIVE_IFACES:
        raise ParamError.invalid(f"{name}.iface", f"expected {', '.join(DRIVE_IFACES)}, got {iface!r}")


_DRIVE_KEYS = {"type", "device", "iface", "format", "image", "bootOrder", "readonly"}


@dataclass(frozen=True)
class DriveSpec:
    """A disk the VM boots or reads: an image file of the agent's images directory, by name."""

    image: str
    format: str = "raw"  # VDSM's: 'raw' or 'cow' (qcow2)
    iface: str = "virtio"
    boot_order: int | None = None
    readonly: bool = False

    def __post_init__(self) -> None:
        _check_drive(self.image, self.format, self.iface, "drives[]")

    @classmethod
    def from_params(cls, value: Any, name: str = "drives[0]") -> DriveSpec:
        if not isinstance(value, Mapping):
            raise ParamError.invalid(name, f"expected a dictionary, got {value!r}")
        if "path" in value:
            raise ParamError.invalid(f"{name}.path", "the agent takes no file system path: name the image with 'image'")
        unknown = set(value) - _DRIVE_KEYS
        if unknown:
            raise ParamError.invalid(name, f"unknown keys {sorted(unknown)}")
        for key, allowed in (("type", "disk"), ("device", "disk")):
            if value.get(key, allowed) != allowed:
                raise ParamError.invalid(f"{name}.{key}", f"only {allowed!r} drives are supported, got {value[key]!r}")
        image, fmt, iface = value.get("image"), value.get("format"), value.get("iface", "virtio")
        _check_drive(image, fmt, iface, name)
        readonly = value.get("readonly", False)
        if not isinstance(readonly, bool):
            raise ParamError.invalid(f"{name}.readonly", f"expected true or false, got {readonly!r}")
        return cls(str(image), str(fmt), iface, _boot_order(value.get("bootOrder"), f"{name}.bootOrder"), readonly)

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"device": "disk", "iface": self.iface, "format": self.format, "image": self.image}
        if self.boot_order:
            params["bootOrder"] = self.boot_order
        if self.readonly:
            params["readonly"] = True
        return params


def _check_drives(drives: tuple[DriveSpec, ...], nics: tuple[NicSpec, ...]) -> None:
    """At most MAX_DRIVES, each image once (QEMU locks an image it writes), boot orders unique."""
    if len(drives) > MAX_DRIVES:
        raise ParamError.invalid("drives", f"at most {MAX_DRIVES} drives, got {len(drives)}")
    images: dict[str, int] = {}
    orders = {n.boot_order: f"NIC {n.alias}" for n in nics if n.boot_order}
    for i, drive in enumerate(drives):
        if drive.image in images:
            raise ParamError.invalid(f"drives[{i}].image", f"{drive.image!r} is drives[{images[drive.image]}] already")
        images[drive.image] = i
        if drive.boot_order:
            if drive.boot_order in orders:
                raise ParamError.invalid(
                    f"drives[{i}].bootOrder", f"{drive.boot_order} is the boot order of {orders[drive.boot_order]}"
                )
            orders[drive.boot_order] = f"drives[{i}]"


_KEYS = {"vmId", "vmName", "memSize", "kernel", "initrd", "kernelArgs", "emulatedMachine", "drives", "nics"}


@dataclass(frozen=True)
class VmSpec:
    vm_id: str  # the libvirt domain UUID
    name: str
    memory_mib: int = 128
    kernel: str = ""  # an image name ('' = no direct kernel boot)
    initrd: str = ""  # an image name
    cmdline: str = ""
    nics: tuple[NicSpec, ...] = field(default=())
    machine: str = DEFAULT_MACHINE  # VDSM's emulatedMachine
    drives: tuple[DriveSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        parse_vm_id(self.vm_id)
        check_vm_name(self.name)
        if self.memory_mib < MIN_MEMORY_MIB:
            raise ParamError.invalid("memSize", f"must be at least {MIN_MEMORY_MIB} MiB, got {self.memory_mib}")
        parse_image_name(self.kernel, "kernel")
        parse_image_name(self.initrd, "initrd")
        parse_machine(self.machine)
        _check_drives(self.drives, self.nics)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> VmSpec:
        unknown = set(params) - _KEYS
        if unknown:
            raise ParamError.invalid("VM.create", f"unknown parameters {sorted(unknown)}")
        vm_id = parse_vm_id(params.get("vmId"))
        if params.get("vmName") is None:
            raise ParamError.missing("vmName")
        memory = params.get("memSize", 128)
        if isinstance(memory, bool) or not isinstance(memory, int):
            raise ParamError.invalid("memSize", f"expected MiB as a number, got {memory!r}")
        strings = {}
        for key in ("vmName", "kernel", "initrd", "kernelArgs"):
            value = params.get(key, "")
            if not isinstance(value, str):
                raise ParamError.invalid(key, f"expected text, got {value!r}")
            strings[key] = value
        check_kernel_args(strings["kernelArgs"])
        nics = params.get("nics") or []
        if not isinstance(nics, list):
            raise ParamError.invalid("nics", f"expected a list, got {nics!r}")
        drives = params.get("drives") or []
        if not isinstance(drives, list):
            raise ParamError.invalid("drives", f"expected a list, got {drives!r}")
        return cls(
            vm_id=vm_id,
            name=strings["vmName"],
            memory_mib=memory,
            kernel=strings["kernel"],
            initrd=strings["initrd"],
            cmdline=strings["kernelArgs"],
            nics=tuple(NicSpec.from_params(n) for n in nics),
            machine=parse_machine(params.get("emulatedMachine", DEFAULT_MACHINE)),
            drives=tuple(DriveSpec.from_params(d, f"drives[{i}]") for i, d in enumerate(drives)),
        )

    def to_params(self) -> dict[str, Any]:
        """The wire form; ``emulatedMachine`` and ``drives`` only when they are not the defaults."""
        params: dict[str, Any] = {
            "vmId": self.vm_id,
            "vmName": self.name,
            "memSize": self.memory_mib,
            "kernel": self.kernel,
            "initrd": self.initrd,
            "kernelArgs": self.cmdline,
            "nics": [n.to_params() for n in self.nics],
        }
        if self.machine != DEFAULT_MACHINE:
            params["emulatedMachine"] = self.machine
        if self.drives:
            params["drives"] = [d.to_params() for d in self.drives]
        return params
