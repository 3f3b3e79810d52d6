"""The agent's settings: defaults < TOML file < VDSM_AGENT_* environment < command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_schema.config import ConfigError, load_settings, split_listen

HYPERVISORS = ("libvirt", "simulated")
# Root ports are PCI buses (at most 255 per guest, boot devices and bridges included).
MAX_PCIE_HOTPLUG_PORTS = 200


@dataclass(frozen=True)
class AgentSettings:
    listen: str = "0.0.0.0:54321"  # VDSM's port
    libvirt_uri: str = "qemu:///system"
    # How long hotunplugNic waits for the guest to release a NIC (VDSM waits 30 s).
    unplug_timeout: float = 30.0
    # While the guest has not released a NIC, hotunplugNic asks again this often (within
    # unplug_timeout): a request sent while the guest kernel boots is never seen (Nova re-sends
    # too, its bug 1882521).  More than 5 s: on PCIe (q35) a second attention-button press
    # within 5 s cancels the unplug in progress, and QEMU refuses a repeat within 5 s anyway.
    unplug_retry_interval: float = 6.0
    # How often port mirroring looks for bridge ports that appeared (or went) since.
    mirror_sync_interval: float = 2.0
    # 'simulated' keeps devices in memory: for scale benchmarks only, never for correctness.
    hypervisor: str = "libvirt"
    log_level: str = "INFO"
    # VM.create names images; they are files of this directory (never a path from the wire).
    images_dir: str = "/var/lib/hotplug-nic/images"
    # The agent's own files: each VM's serial console, <vm id>.console.log.
    log_dir: str = "/var/log/hotplug-nic"
    # Free PCIe root ports a q35 guest gets for hot plug, beyond those its boot devices take (oVirt
    # gives 16): libvirt cannot add one to a running guest, so this is how many NICs it can take.
    pcie_hotplug_ports: int = 16
    # Mutual TLS (engine pki issue-host): this host's certificate, and the deployment CA whose
    # certificates (the engine's) are the only clients accepted.  insecure = plain HTTP, for a lab
    # only: anyone who reaches the port drives the host; the agent warns at every start.
    tls_cert: str = "/etc/hotplug-nic/pki/agent.pem"
    tls_key: str = "/etc/hotplug-nic/pki/agent.key"
    tls_ca: str = "/etc/hotplug-nic/pki/ca.pem"
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.hypervisor not in HYPERVISORS:
            raise ConfigError(f"hypervisor must be one of {', '.join(HYPERVISORS)}, got {self.hypervisor!r}")
        for name in ("unplug_timeout", "unplug_retry_interval", "mirror_sync_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.pcie_hotplug_ports <= MAX_PCIE_HOTPLUG_PORTS:
            raise ConfigError(f"pcie_hotplug_ports must be 0-{MAX_PCIE_HOTPLUG_PORTS}, got {self.pcie_hotplug_ports}")
        split_listen(self.listen, "0.0.0.0")

    @property
    def host(self) -> str:
        return split_listen(self.listen, "0.0.0.0")[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen, "0.0.0.0")[1]


def build(config_file: Path | None, overrides: dict[str, Any]) -> AgentSettings:
    return load_settings(AgentSettings, config_file=config_file, env_prefix="VDSM_AGENT_", overrides=overrides)
