"""The parameters of ``hotplugNic`` / ``hotunplugNic``: the seed's dict, typed and validated.

    {'vmId': <uuid>,
     'nic': {'type': 'interface',
             'device': 'bridge' | 'sriov' | 'vnlink' | 'bridgeless',
             'network': <bridge name (bridge) or host device (vnlink)>,
             'address': {'type': 'pci', 'domain': '0x0000', 'bus': '0x00',
                         'slot': '0x0c', 'function': '0x0'},
             'macAddr': '00:1a:4a:16:01:51',
             'bootOrder': <int>,
             'promisc': ['blue', 'red']  (or 'blue,red': bridges whose traffic this NIC mirrors),
             'specParams': {'inbound': {'average': .., 'peak': .., 'burst': ..}, 'outbound': {..},
                            'vfAddress': <PCI address of the VF, for sriov>},
             'nicModel': 'pv' | 'virtio' | 'rtl8139' | 'e1000' | 'e1000e',
             'alias': 'ua-<nic id>'  (or 'id': <nic id>),
             'linkActive': true}}

Every check here raises :class:`ParamError` naming the parameter; nothing reaches libvirt
unless the whole NIC is valid.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared_schema.errors import ParamError

DEVICE_KINDS = ("bridge", "sriov", "vnlink", "bridgeless")
# The NIC models, defined once: libvirt's names, which are oVirt API v4's too.  The engine's
# OS table, its SQL CHECK and the admin page's model list use these (a test compares them).
MODELS = ("virtio", "e1000", "e1000e", "rtl8139")
# The seed's model names and the libvirt model each means ('pv' is oVirt's name for virtio).
NIC_MODELS = {"pv": "virtio", **{model: model for model in MODELS}}

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# A Linux network device name (bridge, tap): what the kernel accepts, the one rule for it.
# The engine's API, its OpenAPI document and a SQL CHECK use it too (a test compares them).
DEVICE_NAME_PATTERN = r"[A-Za-z0-9_.-]{1,15}"
DEVICE_NAME_RULE = "1-15 of A-Z a-z 0-9 _ . -, not '.' or '..'"
_IFNAME = re.compile(DEVICE_NAME_PATTERN)
_ALIAS = re.compile(r"ua-[A-Za-z0-9_-]{1,64}")
_PCI_TEXT = re.compile(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")
_PCI_LIMITS = {"domain": 0xFFFF, "bus": 0xFF, "slot": 0x1F, "function": 0x7}
# Patterns are applied with fullmatch: '$' would also accept a trailing newline.
_NIC_KEYS = {
    "type", "device", "network", "address", "macAddr", "bootOrder", "promisc", "portMirroring",
    "specParams", "nicModel", "alias", "id", "linkActive",
}  # fmt: skip


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ParamError.invalid(name, f"expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            pass
    raise ParamError.invalid(name, f"expected a number, got {value!r}")


@dataclass(frozen=True, order=True)
class PciAddress:
    domain: int
    bus: int
    slot: int
    function: int

    @classmethod
    def parse(cls, value: Any, name: str = "address") -> PciAddress:
        """From VDSM's dict (hex strings or numbers) or from text like ``0000:00:0c.0``."""
        if isinstance(value, str):
            m = _PCI_TEXT.fullmatch(value)
            if m is None:
                raise ParamError.invalid(name, f"expected a PCI address like 0000:00:0c.0, got {value!r}")
            value = dict(zip(_PCI_LIMITS, (f"0x{g}" for g in m.groups()), strict=True))  # range-checked below
        if not isinstance(value, Mapping):
            raise ParamError.invalid(name, f"expected a PCI address dictionary, got {value!r}")
        if value.get("type", "pci") != "pci":
            raise ParamError.invalid(name, f"only PCI addresses are supported, got type {value.get('type')!r}")
        unknown = set(value) - {"type", *_PCI_LIMITS}
        if unknown:
            raise ParamError.invalid(name, f"unknown keys {sorted(unknown)}")
        if "slot" not in value:
            raise ParamError.missing(f"{name}.slot")
        parts = {}
        for part, limit in _PCI_LIMITS.items():
            number = _int(value.get(part, 0), f"{name}.{part}")
            if not 0 <= number <= limit:
                raise ParamError.invalid(f"{name}.{part}", f"{number:#x} is out of range 0..{limit:#x}")
            parts[part] = number
        return cls(**parts)

    def to_params(self) -> dict[str, str]:
        return {
            "type": "pci",
            "domain": f"{self.domain:#06x}",
            "bus": f"{self.bus:#04x}",
            "slot": f"{self.slot:#04x}",
            "function": f"{self.function:#x}",
        }

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.slot:02x}.{self.function:x}"


@dataclass(frozen=True)
class Bandwidth:
    """libvirt's units: average and peak in kilobytes per second, burst in kilobytes."""

    average: int
    peak: int | None = None
    burst: int | None = None

    @classmethod
    def parse(cls, value: Any, name: str) -> Bandwidth:
        if not isinstance(value, Mapping):
            raise ParamError.invalid(name, f"expected {{average, peak, burst}}, got {value!r}")
        unknown = set(value) - {"average", "peak", "burst"}
        if unknown:
            raise ParamError.invalid(name, f"unknown keys {sorted(unknown)}")
        if value.get("average") is None:
            raise ParamError.missing(f"{name}.average")

        def positive(key: str) -> int | None:
            if value.get(key) is None:
                return None
            number = _int(value[key], f"{name}.{key}")
            if number <= 0:
                raise ParamError.invalid(f"{name}.{key}", f"must be positive, got {number}")
            return number

        return cls(positive("average") or 0, positive("peak"), positive("burst"))

    def to_params(self) -> dict[str, int]:
        return {k: v for k, v in (("average", self.average), ("peak", self.peak), ("burst", self.burst)) if v}


def parse_mac(value: Any, name: str = "macAddr") -> str:
    if not isinstance(value, str) or not _MAC.fullmatch(value.lower()):
        raise ParamError.invalid(name, f"expected a MAC address like 00:1a:4a:16:01:51, got {value!r}")
    mac = value.lower()
    if int(mac[:2], 16) & 1:
        raise ParamError.invalid(name, f"{mac} is a multicast address; a NIC needs a unicast one")
    return mac


def parse_vm_id(value: Any) -> str:
    if value is None:
        raise ParamError.missing("vmId")
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ParamError.invalid("vmId", f"expected a UUID, got {value!r}") from None


def parse_device_name(value: Any, name: str) -> str:
    """A network device name (a bridge, a tap), or ParamError saying what a valid one is."""
    if not isinstance(value, str) or not _IFNAME.fullmatch(value) or value in (".", ".."):
        raise ParamError.invalid(name, f"expected a network device name ({DEVICE_NAME_RULE}), got {value!r}")
    return value


def parse_user_alias(value: Any, name: str) -> str:
    """A libvirt user alias, how later calls find a device: 'ua-' and 1-64 of A-Z a-z 0-9 _ -."""
    if not isinstance(value, str) or not _ALIAS.fullmatch(value):
        raise ParamError.invalid(name, f"a user alias is 'ua-' and 1-64 of A-Z a-z 0-9 _ -, got {value!r}")
    return value


def _alias(nic: Mapping[str, Any], mac: str) -> str:
    """The user alias later calls find the device by: given, 'ua-<id>', or derived from the MAC."""
    if nic.get("alias") is not None:
        return parse_user_alias(nic["alias"], "nic.alias")
    if nic.get("id") is not None:
        return parse_user_alias(f"ua-{nic['id']}", "nic.id")
    return "ua-mac-" + mac.replace(":", "")


def _promisc(nic: Mapping[str, Any]) -> tuple[str, ...]:
    raw = nic.get("promisc", nic.get("portMirroring"))
    if raw in (None, "", []):
        return ()
    names = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(names, list | tuple):
        raise ParamError.invalid("nic.promisc", f"expected network names, got {raw!r}")
    return tuple(parse_device_name(n.strip() if isinstance(n, str) else n, "nic.promisc") for n in names)


def _nic_dict(nic: Any) -> Mapping[str, Any]:
    if nic is None:
        raise ParamError.missing("nic")
    if not isinstance(nic, Mapping):
        raise ParamError.invalid("nic", f"expected a dictionary, got {type(nic).__name__}")
    return nic


@dataclass(frozen=True)
class NicSpec:
    device: str
    mac: str
    model: str  # libvirt's model name
    alias: str
    network: str = ""  # bridge (device 'bridge') or host interface (device 'vnlink')
    address: PciAddress | None = None
    boot_order: int | None = None
    promisc: tuple[str, ...] = ()
    inbound: Bandwidth | None = None
    outbound: Bandwidth | None = None
    vf: PciAddress | None = None  # the virtual function, for 'sriov'
    link_active: bool = True

    @classmethod
    def from_params(cls, nic: Any) -> NicSpec:
        nic = _nic_dict(nic)
        unknown = set(nic) - _NIC_KEYS
        if unknown:
            raise ParamError.invalid("nic", f"unknown keys {sorted(unknown)}")
        if nic.get("type", "interface") != "interface":
            raise ParamError.invalid("nic.type", f"must be 'interface', got {nic.get('type')!r}")
        for required in ("device", "macAddr", "nicModel"):
            if nic.get(required) is None:
                raise ParamError.missing(f"nic.{required}")
        device = nic["device"]
        if device not in DEVICE_KINDS:
            raise ParamError.invalid("nic.device", f"expected one of {', '.join(DEVICE_KINDS)}, got {device!r}")
        model = NIC_MODELS.get(nic["nicModel"]) if isinstance(nic["nicModel"], str) else None
        if model is None:
            raise ParamError.invalid(
                "nic.nicModel", f"expected one of {', '.join(NIC_MODELS)}, got {nic['nicModel']!r}"
            )
        mac = parse_mac(nic["macAddr"], "nic.macAddr")
        network = ""
        if device in ("bridge", "vnlink"):
            if nic.get("network") in (None, ""):
                raise ParamError.missing("nic.network")
            network = parse_device_name(nic["network"], "nic.network")
        spec = nic.get("specParams") or {}
        if not isinstance(spec, Mapping):
            raise ParamError.invalid("nic.specParams", f"expected a dictionary, got {spec!r}")
        unknown = set(spec) - {"inbound", "outbound", "vfAddress"}
        if unknown:
            raise ParamError.invalid("nic.specParams", f"unknown keys {sorted(unknown)}")
        vf = None
        if device == "sriov":
            if spec.get("vfAddress") is None:
                raise ParamError.missing("nic.specParams.vfAddress")
            vf = PciAddress.parse(spec["vfAddress"], "nic.specParams.vfAddress")
        boot_order = None
        if isinstance(nic.get("bootOrder"), bool):
            raise ParamError.invalid("nic.bootOrder", f"expected a number, got {nic['bootOrder']!r}")
        if nic.get("bootOrder") not in (None, "", 0, "0"):
            boot_order = _int(nic["bootOrder"], "nic.bootOrder")
            if boot_order < 1:
                raise ParamError.invalid("nic.bootOrder", f"must be 1 or more, got {boot_order}")
        link = nic.get("linkActive", True)
        if not isinstance(link, bool):
            raise ParamError.invalid("nic.linkActive", f"expected true or false, got {link!r}")
        return cls(
            device=device,
            mac=mac,
            model=model,
            alias=_alias(nic, mac),
            network=network,
            address=PciAddress.parse(nic["address"], "nic.address") if nic.get("address") else None,
            boot_order=boot_order,
            promisc=_promisc(nic),
            inbound=Bandwidth.parse(spec["inbound"], "nic.specParams.inbound") if spec.get("inbound") else None,
            outbound=Bandwidth.parse(spec["outbound"], "nic.specParams.outbound") if spec.get("outbound") else None,
            vf=vf,
            link_active=link,
        )

    def to_params(self) -> dict[str, Any]:
        """The wire form, as the engine sends it."""
        params: dict[str, Any] = {
            "type": "interface",
            "device": self.device,
            "macAddr": self.mac,
            "nicModel": self.model,
            "alias": self.alias,
            "linkActive": self.link_active,
        }
        if self.network:
            params["network"] = self.network
        if self.address:
            params["address"] = self.address.to_params()
        if self.boot_order:
            params["bootOrder"] = self.boot_order
        if self.promisc:
            params["promisc"] = list(self.promisc)
        spec: dict[str, Any] = {}
        if self.inbound:
            spec["inbound"] = self.inbound.to_params()
        if self.outbound:
            spec["outbound"] = self.outbound.to_params()
        if self.vf:
            spec["vfAddress"] = self.vf.to_params()
        if spec:
            params["specParams"] = spec
        return params


@dataclass(frozen=True)
class NicRef:
    """Which NIC ``hotunplugNic`` removes: by alias when given, else by MAC."""

    alias: str | None
    mac: str | None

    @classmethod
    def from_params(cls, nic: Any) -> NicRef:
        nic = _nic_dict(nic)
        mac = parse_mac(nic["macAddr"], "nic.macAddr") if nic.get("macAddr") is not None else None
        alias = None
        if nic.get("alias") is not None or nic.get("id") is not None:
            alias = _alias(nic, mac or "")
        if alias is None and mac is None:
            raise ParamError.missing("nic.alias or nic.macAddr")
        return cls(alias, mac)

    def to_params(self) -> dict[str, str]:
        return {k: v for k, v in (("alias", self.alias), ("macAddr", self.mac)) if v is not None}

    def __str__(self) -> str:
        return f"alias {self.alias}" if self.alias else f"MAC {self.mac}"
