"""The parameters of ``VM.updateDevice`` for a NIC: VDSM's verb, of which this agent does one thing.

    {'vmId': <uuid>,
     'params': {'deviceType': 'interface',
                'alias': 'ua-<nic id>',
                'linkActive': true | false,        absent: unchanged
                'network': <bridge>,                absent: unchanged; else it must be the NIC's own
                'portMirroring': [<bridge>, ...]}}  absent: unchanged; else what the NIC mirrors now

Only the link state of a plugged NIC changes here (libvirt ``updateDeviceFlags`` with the NIC's
live XML and ``<link state='up'|'down'/>``).  ``network`` and ``portMirroring`` may come as they
are now (oVirt's engine sends a NIC's whole state); the agent refuses a different value with 56.
VDSM's other interface keys (:data:`UNCHANGEABLE`) are refused with 56 when they ask for anything
(absent, null or empty asks nothing); any other key is -32602.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared_schema.errors import UPDATE_DEVICE, ParamError, WireError
from shared_schema.nic import parse_device_name, parse_user_alias

DEVICE_TYPE = "interface"  # VDSM's deviceType for NICs; the only kind this agent updates
# VDSM's other keys for an interface update: none of them changes on a plugged NIC here.
UNCHANGEABLE = ("specParams", "filter", "filterParameters", "custom", "mtu", "port_isolated", "xml")
_KEYS = {"deviceType", "alias", "linkActive", "network", "portMirroring", *UNCHANGEABLE}
ONLY_LINK = "only linkActive can change on a plugged NIC; unplug it and plug it again with the new settings"


def _asks_nothing(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


@dataclass(frozen=True)
class NicUpdate:
    """What VM.updateDevice asks of a NIC; None is "unchanged"."""

    alias: str
    link_active: bool | None = None
    network: str | None = None  # '' for a NIC on no bridge
    port_mirroring: tuple[str, ...] | None = None

    @classmethod
    def from_params(cls, params: Any) -> NicUpdate:
        if params is None:
            raise ParamError.missing("params")
        if not isinstance(params, Mapping):
            raise ParamError.invalid("params", f"expected a dictionary, got {type(params).__name__}")
        unknown = set(params) - _KEYS
        if unknown:
            raise ParamError.invalid("params", f"unknown keys {sorted(unknown)}")
        device_type = params.get("deviceType")
        if device_type is None:
            raise ParamError.missing("params.deviceType")
        if not isinstance(device_type, str):
            raise ParamError.invalid("params.deviceType", f"expected text, got {device_type!r}")
        if device_type != DEVICE_TYPE:
            raise WireError(UPDATE_DEVICE, f"only NICs (deviceType 'interface') can be updated, got {device_type!r}")
        if params.get("alias") is None:
            raise ParamError.missing("params.alias")
        alias = parse_user_alias(params["alias"], "params.alias")
        link = params.get("linkActive")
        if link is not None and not isinstance(link, bool):
            raise ParamError.invalid("params.linkActive", f"expected true or false, got {link!r}")
        network = params.get("network")
        if network is not None:
            if not isinstance(network, str):
                raise ParamError.invalid("params.network", f"expected a bridge name, got {network!r}")
            if network:
                parse_device_name(network, "params.network")
        mirroring = params.get("portMirroring")
        bridges = None
        if mirroring is not None:
            if not isinstance(mirroring, list):
                raise ParamError.invalid("params.portMirroring", f"expected a list of bridges, got {mirroring!r}")
            bridges = tuple(parse_device_name(b, f"params.portMirroring[{i}]") for i, b in enumerate(mirroring))
        asked = [key for key in UNCHANGEABLE if not _asks_nothing(params.get(key))]
        if asked:
            raise WireError(UPDATE_DEVICE, f"{', '.join(asked)}: {ONLY_LINK}")
        return cls(alias, link, network, bridges)

    def to_params(self) -> dict[str, Any]:
        """The wire form, as the engine sends it (only what it states)."""
        params: dict[str, Any] = {"deviceType": DEVICE_TYPE, "alias": self.alias}
        if self.link_active is not None:
            params["linkActive"] = self.link_active
        if self.network is not None:
            params["network"] = self.network
        if self.port_mirroring is not None:
            params["portMirroring"] = list(self.port_mirroring)
        return params
