"""The agent's settings: defaults < TOML file < VDSM_AGENT_* environment < command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_schema.config import ConfigError, load_settings, split_listen

HYPERVISORS = ("libvirt", "simulated")


@dataclass(frozen=True)
class AgentSettings:
    listen: str = "0.0.0.0:54321"  # VDSM's port
    libvirt_uri: str = "qemu:///system"
    # How long hotunplugNic waits for the guest to release a NIC (VDSM waits 30 s).
    unplug_timeout: float = 30.0
    # 'simulated' keeps devices in memory: for scale benchmarks only, never for correctness.
    hypervisor: str = "libvirt"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.hypervisor not in HYPERVISORS:
            raise ConfigError(f"hypervisor must be one of {', '.join(HYPERVISORS)}, got {self.hypervisor!r}")
        if self.unplug_timeout <= 0:
            raise ConfigError(f"unplug_timeout must be positive, got {self.unplug_timeout}")
        split_listen(self.listen, "0.0.0.0")

    @property
    def host(self) -> str:
        return split_listen(self.listen, "0.0.0.0")[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen, "0.0.0.0")[1]


def build(config_file: Path | None, overrides: dict[str, Any]) -> AgentSettings:
    return load_settings(AgentSettings, config_file=config_file, env_prefix="VDSM_AGENT_", overrides=overrides)
