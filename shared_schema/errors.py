"""The error codes that cross the wire between the engine and the agents.

Numbers and names follow VDSM (lib/vdsm/common/exception.py), so that tools which know
VDSM's table read ours.  Invalid parameters use JSON-RPC's own "invalid params" code.

    code    name           when
    ------  -------------  ---------------------------------------------------------------
    1       noVM           the vmId names no domain on this host
    4       exist          VM.create for a vmId that already runs here
    9       createErr      libvirt refused to define or start the VM
    11      MissParam      a required parameter is absent
    16      unexpected     a bug or an unforeseen failure (the message says what)
    49      hotplugNic     attaching the NIC failed (libvirt's reason; libvirt's code in data)
    50      hotunplugNic   detaching failed, the guest did not release it, or no such device
    56      updateDevice   VM.updateDevice refused: no such NIC, a change other than its link
                           state, or libvirt's refusal (libvirt's code in data)
    -32602  invalidParams  a parameter is present but malformed (the message names it)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str
    message: str
    expected: bool  # a caller's mistake or a refusal: logged without a traceback


NO_VM = ErrorCode(1, "noVM", "Virtual machine does not exist", True)
VM_EXISTS = ErrorCode(4, "exist", "Virtual machine already exists", True)
CREATE_FAILED = ErrorCode(9, "createErr", "Error creating the requested VM", True)
MISSING_PARAMETER = ErrorCode(11, "MissParam", "Missing required parameter", True)
UNEXPECTED = ErrorCode(16, "unexpected", "Unexpected exception", False)
HOTPLUG_NIC = ErrorCode(49, "hotplugNic", "Failed to hotplug NIC", True)
HOTUNPLUG_NIC = ErrorCode(50, "hotunplugNic", "Failed to hotunplug NIC", True)
UPDATE_DEVICE = ErrorCode(56, "updateDevice", "Failed to update device", True)
INVALID_PARAMETER = ErrorCode(-32602, "invalidParams", "Invalid parameter", True)

TABLE: dict[int, ErrorCode] = {
    e.code: e
    for e in (
        NO_VM,
        VM_EXISTS,
        CREATE_FAILED,
        MISSING_PARAMETER,
        UNEXPECTED,
        HOTPLUG_NIC,
        HOTUNPLUG_NIC,
        UPDATE_DEVICE,
        INVALID_PARAMETER,
    )
}


class WireError(Exception):
    """An error with a code from the table, a message for an operator, and optional data."""

    def __init__(self, error: ErrorCode, detail: str = "", data: dict[str, object] | None = None):
        self.error = error
        self.detail = detail
        self.data = data or {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.error.message}: {self.detail}" if self.detail else self.error.message


class ParamError(WireError):
    """Raised while validating parameters: missing (11) or malformed (-32602)."""

    @classmethod
    def missing(cls, name: str) -> ParamError:
        return cls(MISSING_PARAMETER, name)

    @classmethod
    def invalid(cls, name: str, why: str) -> ParamError:
        return cls(INVALID_PARAMETER, f"{name}: {why}")
