"""The parameters of ``VM.create``: what a host needs to start a guest.

{'vmId': <uuid>, 'vmName': 'demo', 'memSize': <MiB>,
 'kernel': <image name>, 'initrd': <image name>, 'kernelArgs': 'console=ttyS0',
 'nics': [<a hotplugNic 'nic' dict>, ...]}

No file system path ever crosses the wire: ``kernel`` and ``initrd`` name files of the agent's
images directory (no separators, no ``..``), and the agent writes each VM's serial console to its
own log directory, named by VM id.
"""

from __future__ import annotations

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


_KEYS = {"vmId", "vmName", "memSize", "kernel", "initrd", "kernelArgs", "nics"}


@dataclass(frozen=True)
class VmSpec:
    vm_id: str  # the libvirt domain UUID
    name: str
    memory_mib: int = 128
    kernel: str = ""  # an image name ('' = no direct kernel boot)
    initrd: str = ""  # an image name
    cmdline: str = ""
    nics: tuple[NicSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        parse_vm_id(self.vm_id)
        check_vm_name(self.name)
        if self.memory_mib < MIN_MEMORY_MIB:
            raise ParamError.invalid("memSize", f"must be at least {MIN_MEMORY_MIB} MiB, got {self.memory_mib}")
        parse_image_name(self.kernel, "kernel")
        parse_image_name(self.initrd, "initrd")

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
        return cls(
            vm_id=vm_id,
            name=strings["vmName"],
            memory_mib=memory,
            kernel=strings["kernel"],
            initrd=strings["initrd"],
            cmdline=strings["kernelArgs"],
            nics=tuple(NicSpec.from_params(n) for n in nics),
        )

    def to_params(self) -> dict[str, Any]:
        return {
            "vmId": self.vm_id,
            "vmName": self.name,
            "memSize": self.memory_mib,
            "kernel": self.kernel,
            "initrd": self.initrd,
            "kernelArgs": self.cmdline,
            "nics": [n.to_params() for n in self.nics],
        }
