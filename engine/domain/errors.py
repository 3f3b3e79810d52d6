"""The engine's errors: one table, each with a stable code, an HTTP status and a message.

    EngineError
     ├── NotFound          404   the VM, NIC, host, cluster, data center, network, profile, QoS, disk or
     │                           MAC pool does not exist
     ├── Invalid           400   the request itself is wrong (bad MAC, unknown model, ...)
     ├── Refused           409   a canDo rule refuses it in the current state
     ├── HostFailed        502   the host tried and failed (agent codes 49 / 50 / 56 / 9)
     ├── HostUnreachable   503   the host did not answer: what it did is followed by monitoring
     ├── DatabaseUnavailable 503 the engine's database is away (restarting): try again
     ├── Unauthorized      401
     └── Forbidden         403

Codes are stable: clients and the web page may rely on them.  ``kind()`` refuses two kinds
with one code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorKind:
    code: int
    name: str
    status: int
    reason: str  # short, oVirt's fault 'reason'


_KINDS: dict[int, ErrorKind] = {}


def kind(code: int, name: str, status: int, reason: str) -> ErrorKind:
    if code in _KINDS:
        raise ValueError(f"error code {code} is used twice ({_KINDS[code].name}, {name})")
    _KINDS[code] = ErrorKind(code, name, status, reason)
    return _KINDS[code]


VM_NOT_FOUND = kind(1001, "VM_NOT_FOUND", 404, "Not found")
NIC_NOT_FOUND = kind(1002, "NIC_NOT_FOUND", 404, "Not found")
HOST_NOT_FOUND = kind(1003, "HOST_NOT_FOUND", 404, "Not found")
CLUSTER_NOT_FOUND = kind(1004, "CLUSTER_NOT_FOUND", 404, "Not found")
NETWORK_NOT_FOUND = kind(1005, "NETWORK_NOT_FOUND", 404, "Not found")
PROFILE_NOT_FOUND = kind(1006, "VNIC_PROFILE_NOT_FOUND", 404, "Not found")
NOT_FOUND = kind(1007, "NOT_FOUND", 404, "Not found")
DATA_CENTER_NOT_FOUND = kind(1008, "DATA_CENTER_NOT_FOUND", 404, "Not found")
QOS_NOT_FOUND = kind(1009, "QOS_NOT_FOUND", 404, "Not found")
DISK_NOT_FOUND = kind(1010, "DISK_NOT_FOUND", 404, "Not found")
MAC_POOL_NOT_FOUND = kind(1011, "MAC_POOL_NOT_FOUND", 404, "Not found")

INVALID = kind(1100, "INVALID_REQUEST", 400, "Invalid request")
INVALID_MAC = kind(1101, "INVALID_MAC_ADDRESS", 400, "Invalid request")
INVALID_MODEL = kind(1102, "INVALID_NIC_MODEL", 400, "Invalid request")
NETWORK_NOT_IN_CLUSTER = kind(1103, "NETWORK_NOT_IN_VM_CLUSTER", 400, "Invalid request")
INVALID_OS = kind(1104, "INVALID_OS_TYPE", 400, "Invalid request")
INVALID_MAC_RANGE = kind(1105, "INVALID_MAC_POOL_RANGES", 400, "Invalid request")

VM_STATUS_ILLEGAL = kind(1200, "VM_STATUS_ILLEGAL", 409, "Operation Failed")
HOTPLUG_CLUSTER_VERSION = kind(1201, "HOTPLUG_NOT_SUPPORTED_BY_CLUSTER_VERSION", 409, "Operation Failed")
HOTPLUG_OS = kind(1202, "HOTPLUG_NOT_SUPPORTED_BY_OS", 409, "Operation Failed")
MAC_IN_USE = kind(1203, "MAC_ADDRESS_IN_USE", 409, "Operation Failed")
PCI_BUDGET = kind(1204, "PCI_DEVICE_LIMIT_EXCEEDED", 409, "Operation Failed")
NIC_NAME_IN_USE = kind(1205, "NIC_NAME_IN_USE", 409, "Operation Failed")
UPDATE_PLUGGED_RUNNING = kind(1206, "CANNOT_UPDATE_PLUGGED_NIC_OF_RUNNING_VM", 409, "Operation Failed")
REMOVE_PLUGGED_RUNNING = kind(1207, "CANNOT_REMOVE_PLUGGED_NIC_OF_RUNNING_VM", 409, "Operation Failed")
MAC_POOL_EMPTY = kind(1208, "MAC_POOL_EXHAUSTED", 409, "Operation Failed")
NAME_IN_USE = kind(1209, "NAME_IN_USE", 409, "Operation Failed")
NO_HOST = kind(1210, "NO_HOST_AVAILABLE", 409, "Operation Failed")
CONFLICT = kind(1211, "CONFLICT", 409, "Operation Failed")
IN_USE = kind(1212, "OBJECT_IN_USE", 409, "Operation Failed")
VM_BUSY = kind(1213, "VM_BUSY", 409, "Operation Failed")
PROFILE_USED_ON_HOSTS = kind(1214, "VNIC_PROFILE_USED_BY_RUNNING_VMS", 409, "Operation Failed")
PASS_THROUGH_UNSUPPORTED = kind(1215, "PASS_THROUGH_NOT_SUPPORTED", 409, "Operation Failed")

ACTIVATE_NIC_FAILED = kind(1300, "ACTIVATE_NIC_FAILED", 502, "Host failed")
DEACTIVATE_NIC_FAILED = kind(1301, "DEACTIVATE_NIC_FAILED", 502, "Host failed")
RUN_VM_FAILED = kind(1302, "RUN_VM_FAILED", 502, "Host failed")
STOP_VM_FAILED = kind(1303, "STOP_VM_FAILED", 502, "Host failed")
HOST_NOT_RESPONDING = kind(1304, "HOST_NOT_RESPONDING", 503, "Host not responding")
DATABASE_UNAVAILABLE = kind(1305, "DATABASE_UNAVAILABLE", 503, "Service unavailable")
UPDATE_NIC_FAILED = kind(1306, "UPDATE_NIC_FAILED", 502, "Host failed")

UNAUTHORIZED = kind(1400, "UNAUTHORIZED", 401, "Unauthorized")
FORBIDDEN = kind(1401, "FORBIDDEN", 403, "Forbidden")


class EngineError(Exception):
    def __init__(self, kind: ErrorKind, detail: str, data: dict[str, object] | None = None):
        self.kind = kind
        self.detail = detail
        self.data = data or {}
        super().__init__(f"{kind.name}: {detail}")
