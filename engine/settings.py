"""The engine's settings: defaults < TOML file < ENGINE_* environment < command line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_schema.config import load_settings, split_listen


@dataclass(frozen=True)
class EngineSettings:
    listen: str = "127.0.0.1:8080"
    database_url: str = ""
    admin_password: str = ""  # admin@internal; the engine refuses to start without one
    readonly_password: str = ""  # readonly@internal; '' = no such user
    token_ttl: int = 8 * 3600  # seconds an API token stays valid
    # Failed logins: past login_attempts in login_window seconds, the user name and the client
    # address are locked for 1 s, 2 s, 4 s ... up to login_lock_max seconds (429, Retry-After).
    login_attempts: int = 5
    login_window: float = 900.0
    login_lock_max: float = 300.0
    # Seconds to wait for a host's answer; keep it above the agents' unplug_timeout (30 s).
    host_timeout: float = 45.0
    # Host monitoring: a poll of every host this often; a host that misses this many polls in a
    # row (each waited for at most poll_timeout) is non_responsive.  Each host is watched by one
    # engine at a time under a lease in PostgreSQL that lives lease_ttl seconds unless renewed.
    monitor_interval: float = 2.0
    poll_timeout: float = 5.0
    missed_polls: int = 3
    lease_ttl: float = 10.0
    log_level: str = "INFO"
    # Mutual TLS to the agents (engine/pki.py): the deployment CA and the engine's certificate.
    # insecure_agents = plain HTTP to agents, only for a lab; the engine warns at start.
    agent_ca: str = ""
    agent_cert: str = ""
    agent_key: str = ""
    insecure_agents: bool = False
    # The API over HTTPS when both are set (--tls-cert, --tls-key); plain HTTP otherwise.
    tls_cert: str = ""
    tls_key: str = ""

    def __post_init__(self) -> None:
        split_listen(self.listen, "127.0.0.1")

    @property
    def host(self) -> str:
        return split_listen(self.listen, "127.0.0.1")[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen, "127.0.0.1")[1]


def build(config_file: Path | None, overrides: dict[str, Any]) -> EngineSettings:
    env = dict(os.environ)
    # DATABASE_URL is the conventional name; ENGINE_DATABASE_URL and --database-url win over it.
    if "DATABASE_URL" in env:
        env.setdefault("ENGINE_DATABASE_URL", env["DATABASE_URL"])
    return load_settings(
        EngineSettings,
        config_file=config_file,
        env_prefix="ENGINE_",
        environ=env,
        overrides=overrides,
    )
