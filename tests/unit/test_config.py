"""Settings layer as documented: defaults < TOML file < environment < command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_schema.config import ConfigError, load_settings
from vdsm_agent.settings import AgentSettings


def test_later_sources_win(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text('listen = "10.0.0.1:1"\nlibvirt_uri = "qemu:///session"\n')
    settings = load_settings(
        AgentSettings,
        config_file=conf,
        env_prefix="VDSM_AGENT_",
        environ={"VDSM_AGENT_LISTEN": "127.0.0.1:2"},
        overrides={"libvirt_uri": None},
    )
    assert settings.listen == "127.0.0.1:2"
    assert settings.libvirt_uri == "qemu:///session"
    assert settings.port == 2
    cli = load_settings(AgentSettings, env_prefix="X_", environ={}, overrides={"listen": "0.0.0.0:3"})
    assert (cli.host, cli.port) == ("0.0.0.0", 3)


def test_unknown_key_and_bad_toml_are_named(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text('lisen = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'lisen'"):
        load_settings(AgentSettings, config_file=conf, env_prefix="X_", environ={})
    conf.write_text("listen = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(AgentSettings, config_file=conf, env_prefix="X_", environ={})


def test_a_value_of_the_wrong_type_in_the_file_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text('unplug_timeout = "soon"\n')
    with pytest.raises(ConfigError, match="unplug_timeout must be float, got 'soon'"):
        load_settings(AgentSettings, config_file=conf, env_prefix="X_", environ={})
    conf.write_text("unplug_timeout = 5\n")  # an integer where seconds may have decimals is fine
    assert load_settings(AgentSettings, config_file=conf, env_prefix="X_", environ={}).unplug_timeout == 5.0
