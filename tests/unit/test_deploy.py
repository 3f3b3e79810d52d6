"""The shipped example config is one the agent accepts, and the unit starts what it names."""

from __future__ import annotations

import configparser
from pathlib import Path

from vdsm_agent.settings import AgentSettings, build

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_example_config_loads_with_vdsm_defaults() -> None:
    settings = build(DEPLOY / "vdsm-agent.toml", {})
    assert settings == AgentSettings()  # the example documents the defaults, no more


def test_unit_is_type_notify_and_restarts_on_failure() -> None:
    unit = configparser.ConfigParser(strict=False)
    unit.read(DEPLOY / "vdsm-agent.service")
    assert unit["Service"]["Type"] == "notify"
    assert unit["Service"]["Restart"] == "on-failure"
    assert "libvirtd.service" in unit["Unit"]["After"]
    assert "--config /etc/hotplug-nic/vdsm-agent.toml" in unit["Service"]["ExecStart"]


def test_engine_example_config_loads_and_its_unit_migrates_first() -> None:
    from engine.settings import EngineSettings
    from engine.settings import build as build_engine

    settings = build_engine(DEPLOY / "engine.toml", {})
    assert settings.listen == EngineSettings().listen and settings.token_ttl == EngineSettings().token_ttl
    unit = configparser.ConfigParser(strict=False)
    unit.read(DEPLOY / "engine.service")
    assert "engine migrate" in unit["Service"]["ExecStartPre"]
    assert unit["Service"]["Restart"] == "on-failure"
