"""Guest operating systems the engine knows, in oVirt API v4 names, and what they support.

The seed restricts NIC hot plug to these: Windows7, Windows7 x64, Windows2008, Windows2008 x64,
Windows2008R2 x64, RHEL5, RHEL5 x64, RHEL6 and RHEL6 x64.  This table is the data the rule
reads; supporting another OS is one line here, not a code branch.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared_schema.nic import MODELS


@dataclass(frozen=True)
class OsType:
    name: str  # oVirt API v4 name
    label: str
    nic_hotplug: bool
    nic_models: frozenset[str] = frozenset(MODELS)


_ALL = (
    OsType("other", "Other OS", False),
    OsType("other_linux", "Linux", False),
    OsType("rhel_3", "Red Hat Enterprise Linux 3.x", False),
    OsType("rhel_4", "Red Hat Enterprise Linux 4.x", False),
    OsType("rhel_5", "Red Hat Enterprise Linux 5.x", True),
    OsType("rhel_5x64", "Red Hat Enterprise Linux 5.x x64", True),
    OsType("rhel_6", "Red Hat Enterprise Linux 6.x", True),
    OsType("rhel_6x64", "Red Hat Enterprise Linux 6.x x64", True),
    OsType("windows_xp", "Windows XP", False),
    OsType("windows_2003", "Windows 2003", False),
    OsType("windows_2003x64", "Windows 2003 x64", False),
    OsType("windows_7", "Windows 7", True),
    OsType("windows_7x64", "Windows 7 x64", True),
    OsType("windows_2008", "Windows 2008", True),
    OsType("windows_2008x64", "Windows 2008 x64", True),
    OsType("windows_2008r2x64", "Windows 2008 R2 x64", True),
)
OS_TYPES: dict[str, OsType] = {os.name: os for os in _ALL}
