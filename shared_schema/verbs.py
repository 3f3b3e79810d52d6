"""The JSON-RPC verbs the engine calls on an agent: their names, defined once for both sides.

    verb                   params                              answer (shared_schema.answers)
    ---------------------  ----------------------------------  ---------------------------------
    Host.ping              -                                   true
    Host.getCapabilities   -                                   {libvirtVersion, bridges, ...}
    Host.getAllVmStats     -                                   [VmStatus]: status + device hash
    Host.getVMFullList     vmList: [vmId] (absent: every VM)   [VmStats]: with the NICs as placed
    VM.create              VmSpec                              VmStats
    VM.destroy             vmId                                {vmId, status}
    VM.hotplugNic          vmId, nic: NicSpec                  HotplugAnswer
    VM.hotunplugNic        vmId, nic: NicRef                   HotunplugAnswer
    VM.updateDevice        vmId, params: NicUpdate             UpdateDeviceAnswer (the NIC as placed)

Monitoring polls ``Host.getAllVmStats`` and asks ``Host.getVMFullList`` only for the VMs whose
device hash changed (VDSM's way of keeping many hosts cheap to watch).  The seed's bare
``hotplugNic`` / ``hotunplugNic`` are served too.
"""

from __future__ import annotations

PING = "Host.ping"
CAPABILITIES = "Host.getCapabilities"
ALL_VM_STATS = "Host.getAllVmStats"
VM_FULL_LIST = "Host.getVMFullList"
CREATE = "VM.create"
DESTROY = "VM.destroy"
HOTPLUG_NIC = "VM.hotplugNic"
HOTUNPLUG_NIC = "VM.hotunplugNic"
UPDATE_DEVICE = "VM.updateDevice"
