"""An unplug sent while the guest kernel is still booting is never seen by the guest; the agent
re-sends it (every 6 s by default) until the guest, once up, releases the NIC: the call succeeds
instead of waiting out its 30 s and failing with 50 (issue 11; Nova's bug 1882521)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools import guest
from devtools.agent_proc import AgentClient
from vdsm_agent.live_xml import parse_nics
from vdsm_agent.settings import AgentSettings


@pytest.fixture
async def vm_id(libvirt_conn: libvirt.virConnect) -> AsyncIterator[str]:
    vm_id = str(uuid.uuid4())
    yield vm_id
    with contextlib.suppress(libvirt.libvirtError):
        libvirt_conn.lookupByUUIDString(vm_id).destroy()


async def _metric(agent: AgentClient, name: str) -> float:
    async with agent.session.get(agent.url.replace("/jsonrpc", "/metrics")) as resp:
        text = await resp.text()
    found = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    return sum(found)


async def test_an_unplug_sent_while_the_guest_boots_succeeds_through_re_sends(
    agent: AgentClient, libvirt_conn: libvirt.virConnect, consoles: Path, bridge: str, vm_id: str, output_dir: Path
) -> None:
    console = guest.console_of(vm_id)
    console.unlink(missing_ok=True)
    spec = guest.spec("hpt-resend-guest", vm_id=vm_id).to_params()
    resends_before = await _metric(agent, "vdsm_agent_unplug_resends_total")

    await agent.ok("VM.create", **spec)
    started = time.monotonic()  # VM.create answers once QEMU runs the guest: its boot starts

    async def guest_ready() -> float:
        await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
        return time.monotonic() - started

    ready = asyncio.create_task(guest_ready())
    await asyncio.sleep(0.5)
    nic = {"type": "interface", "device": "bridge", "network": bridge, "macAddr": "52:54:00:ab:00:01",
           "nicModel": "pv", "id": "early"}  # fmt: skip
    await agent.ok("VM.hotplugNic", vmId=vm_id, nic=nic)
    sent = time.monotonic() - started
    assert sent < 1.0, f"the unplug must go while the guest boots, not {sent:.2f} s after start"

    answer = await agent.ok("VM.hotunplugNic", vmId=vm_id, nic={"alias": "ua-early"})
    done = time.monotonic() - started
    assert answer == {"vmId": vm_id, "nic": {"alias": "ua-early", "macAddr": "52:54:00:ab:00:01"}}
    live = parse_nics(libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0))
    assert "ua-early" not in {n.alias for n in live}
    ready_at = await ready

    # The guest missed the first request: the success came from a re-send, well before the timeout.
    timeout = AgentSettings().unplug_timeout
    assert done < timeout, f"took {done:.1f} s"
    log = agent.log.read_text()
    again = [line for line in log.splitlines() if vm_id in line and "sending the unplug request again" in line]
    assert again, "the agent did not re-send: the guest saw the first request after all?"
    assert await _metric(agent, "vdsm_agent_unplug_resends_total") >= resends_before + len(again)

    measured = (
        f"VM start -> plug {0.5:.1f} s, unplug sent at {sent:.2f} s, unplug answered OK at {done:.2f} s "
        f"after {len(again)} re-send(s) (interval {AgentSettings().unplug_retry_interval:g} s); "
        f"the guest printed its ready marker at {ready_at:.1f} s\n"
    )
    (output_dir / "e2e").mkdir(parents=True, exist_ok=True)
    (output_dir / "e2e" / "unplug-resend.txt").write_text(measured)
    print(measured)
