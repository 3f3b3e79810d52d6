"""The PKI of a run (``make run``, the tests): a CA made for this checkout, in its state
directory, with the engine's certificate and one for agents on this machine (127.0.0.1).

Everything an engine or agent of a run needs to speak mutual TLS, as the deployed ones do
(``engine pki``): the settings as environment variables, and the client context the tests use
to call an agent the way the engine does.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from devtools import paths
from engine import pki

LOCAL_NAMES = ["127.0.0.1", "localhost"]


@dataclass(frozen=True)
class RunPki:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / pki.CA_CERT

    def cert(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"

    def engine_env(self) -> dict[str, str]:
        cert, key = self.cert("engine")
        return {"ENGINE_AGENT_CA": str(self.ca), "ENGINE_AGENT_CERT": str(cert), "ENGINE_AGENT_KEY": str(key)}

    def agent_env(self) -> dict[str, str]:
        cert, key = self.cert("agent")
        return {"VDSM_AGENT_TLS_CA": str(self.ca), "VDSM_AGENT_TLS_CERT": str(cert), "VDSM_AGENT_TLS_KEY": str(key)}

    def client_context(self) -> ssl.SSLContext:
        """What the engine presents to agents: for tests that call an agent as the engine does."""
        cert, key = self.cert("engine")
        return pki.client_context(cert, key, self.ca)


def ensure(directory: Path | None = None) -> RunPki:
    """The run's CA and certificates, made once (idempotent; kept with the checkout's state)."""
    run = RunPki(directory or paths.state_dir() / "pki")
    run.directory.mkdir(parents=True, exist_ok=True)
    run.directory.chmod(0o700)
    if not run.ca.exists():
        pki.init_ca(run.directory, name="hotplug-nic run CA")
    if not run.cert("engine")[0].exists():
        pki.issue(run.directory, "engine", server_names=LOCAL_NAMES, client=True)
    if not run.cert("agent")[0].exists():
        pki.issue(run.directory, "agent", server_names=LOCAL_NAMES, client=False)
    return run
