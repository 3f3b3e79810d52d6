"""Nobody but the engine drives a host (mutual TLS against the real agent), and the agent never
takes a file system path from the wire (images by name, consoles of its own)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import ssl
import uuid
from pathlib import Path

import aiohttp
import jsonrpcclient
import pytest

from devtools import guest, tls
from devtools.agent_proc import AgentClient, run_agent
from engine import pki
from shared_schema.errors import INVALID_PARAMETER
from tests.e2e.conftest import EngineSetup, Guest


def _context(cert: tuple[Path, Path] | None, ca: Path) -> ssl.SSLContext:
    if cert is None:
        return ssl.create_default_context(cafile=str(ca))  # trusts the agent, shows no certificate
    return pki.client_context(*cert, ca)


async def _ping(url: str, context: ssl.SSLContext) -> None:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
        http.post(url, json=jsonrpcclient.request("VM.destroy", params={"vmId": str(uuid.uuid4())})) as resp,
    ):
        await resp.read()


async def test_only_the_deployments_engine_certificate_is_served(
    agent: AgentClient, clean_guest: Guest, tmp_path: Path
) -> None:
    run = tls.ensure()
    other = tmp_path / "other-ca"
    pki.init_ca(other, name="another CA")
    stranger = pki.issue(other, "engine", client=True)
    expired = pki.issue(run.directory, "expired-engine", client=True, days=1, out_dir=tmp_path,
                        valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))  # fmt: skip
    before = clean_guest.domain.XMLDesc(0)
    for who, context in (
        ("no certificate", _context(None, run.ca)),
        ("another CA's certificate", _context(stranger, run.ca)),
        ("an expired certificate", _context(expired, run.ca)),
    ):
        with pytest.raises(aiohttp.ClientError):
            await _ping(agent.url, context)
            pytest.fail(f"the agent served a client with {who}")
    assert clean_guest.domain.XMLDesc(0) == before
    await _ping(agent.url, run.client_context())  # the engine's certificate is served


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A root-only file outside the images directory, and a link to it inside."""
    target = tmp_path / "victim.txt"
    target.write_text("precious root-only data\n")
    target.chmod(0o600)
    link = guest.GUEST_DIR / f"link-out-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    yield target
    link.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"kernel": "VICTIM"}, "kernel"),
        ({"initrd": "VICTIM"}, "initrd"),
        ({"kernel": "../../../etc/hostname"}, "kernel"),
        ({"kernel": ".."}, "kernel"),
        ({"kernel": "LINK"}, "kernel"),
        ({"consoleLog": "VICTIM"}, "consoleLog"),
        ({"kernel": "no-such-image"}, "kernel"),
    ],
    ids=["kernel path", "initrd path", "dot-dot", "parent", "link out", "console path", "missing"],
)
async def test_vm_create_takes_no_path_and_leaves_other_files_alone(
    agent: AgentClient, victim: Path, change: dict[str, str], param: str
) -> None:
    replace = {"VICTIM": str(victim), "LINK": f"link-out-{os.getpid()}"}
    vm_id = str(uuid.uuid4())
    params = {**guest.spec("hpt-hostile", vm_id=vm_id).to_params(),
              **{k: replace.get(v, v) for k, v in change.items()}}  # fmt: skip
    before = (victim.read_bytes(), victim.stat().st_mode, victim.stat().st_uid)
    error = await agent.error("VM.create", **params)
    assert error.code == INVALID_PARAMETER.code and param in error.message
    await asyncio.sleep(0.5)
    assert (victim.read_bytes(), victim.stat().st_mode, victim.stat().st_uid) == before
    assert not guest.console_of(vm_id).exists()


async def test_the_engine_refuses_an_agent_whose_certificate_names_another_address(
    engine_setup: EngineSetup, output_dir: Path, tmp_path: Path
) -> None:
    """An agent at 127.0.0.1 presenting a certificate of the deployment CA, but for 192.0.2.9:
    the engine never talks to it (a stolen host certificate cannot impersonate another host)."""
    run = tls.ensure()
    cert, key = pki.issue(run.directory, "elsewhere", server_names=["192.0.2.9"], client=False, out_dir=tmp_path)
    async with run_agent(output_dir / "e2e", tls_cert=str(cert), tls_key=str(key)) as impostor:
        port = int(impostor.url.split(":")[2].split("/")[0])
        host = await engine_setup.api.ok("POST", "/hosts", {"name": "impostor", "address": "127.0.0.1", "port": port,
                                                            "cluster": {"id": engine_setup.cluster_id}})  # fmt: skip
        assert host["status"] == "non_responsive"
        vm = await engine_setup.api.ok("POST", "/vms", guest.engine_vm("never-there", engine_setup.cluster_id))
        placement = {"vm": {"placement_policy": {"hosts": {"host": [{"id": host["id"]}]}}}}
        status, fault = await engine_setup.api.fault("POST", f"/vms/{vm['id']}/start", placement)
        assert status == 409 and fault["code"] == "NO_HOST_AVAILABLE"  # not up: never asked
        assert "POST /jsonrpc" not in impostor.log.read_text()  # no call ever got through
