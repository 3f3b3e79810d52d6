"""The VM description the engine sends to ``VM.create``: what a host needs to start a guest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class VmSpec:
    vm_id: str  # the libvirt domain UUID
    name: str
    memory_mib: int = 128
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    console_log: str = ""  # serial console to this file ('' = no serial file)

    def __post_init__(self) -> None:
        uuid.UUID(self.vm_id)
        if not self.name or len(self.name) > 64:
            raise ValueError(f"VM name must be 1-64 characters, got {self.name!r}")
        if self.memory_mib < 16:
            raise ValueError(f"VM memory must be at least 16 MiB, got {self.memory_mib}")
