"""The agent's settings: defaults < TOML file < VDSM_AGENT_* environment < command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_schema.config import load_settings


@dataclass(frozen=True)
class AgentSettings:
    listen: str = "0.0.0.0:54321"  # VDSM's port
    libvirt_uri: str = "qemu:///system"
    log_level: str = "INFO"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0] or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def build(config_file: Path | None, overrides: dict[str, Any]) -> AgentSettings:
    return load_settings(
        AgentSettings, config_file=config_file, env_prefix="VDSM_AGENT_", overrides=overrides
    )
