"""hotunplugNic re-sends its request while the guest is silent (a guest still booting never sees
the first one), within the unplug timeout; libvirt refusing a re-send because an unplug is
pending is no failure, and "device not found" means the device is gone.  Simulated guests."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest

from shared_schema import errors
from shared_schema.answers import UnplugReason, failure_data
from shared_schema.config import ConfigError
from shared_schema.errors import WireError
from shared_schema.nic import NicRef, NicSpec
from shared_schema.vm import VmSpec
from vdsm_agent.domain_xml import build_domain, to_string
from vdsm_agent.hypervisor import HypervisorError
from vdsm_agent.live_xml import parse_nics
from vdsm_agent.mirroring import PortMirror
from vdsm_agent.nics import NicService, unplug_in_progress
from vdsm_agent.settings import AgentSettings, build
from vdsm_agent.simulated import SimulatedHostNet, SimulatedHypervisor

INTERVAL = 0.02  # the re-send interval these tests run with (the default is 6 s)
BUSY = "internal error: unable to execute QEMU command 'device_del': Device ua-nic1 is already in the process of unplug"


class _Guest(SimulatedHypervisor):
    """Counts the detach requests it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def detach(self, vm_id: str, alias: str) -> None:
        self.requests += 1
        await self.handle(vm_id, alias)

    async def handle(self, vm_id: str, alias: str) -> None:
        await super().detach(vm_id, alias)

    def remove_quietly(self, vm_id: str, alias: str) -> None:
        """The device leaves libvirt's live XML, and no event says so."""
        dom = self._get(vm_id)
        dom.interfaces[:] = [i for i in dom.interfaces if i.alias != alias]


class _BootingGuest(_Guest):
    """Never sees the first ``deaf`` requests (its kernel is still booting), then acts on the next."""

    def __init__(self, deaf: int):
        super().__init__()
        self.deaf = deaf

    async def handle(self, vm_id: str, alias: str) -> None:
        self._get(vm_id)
        if self.requests > self.deaf:
            await super().handle(vm_id, alias)


class _BusyGuest(_Guest):
    """Misses the first request; the second starts an unplug that takes ``work`` seconds, and
    libvirt refuses every request meanwhile: the unplug is in progress already."""

    def __init__(self, work: float):
        super().__init__()
        self.work = work
        self.refused = 0
        self._pending = False

    async def handle(self, vm_id: str, alias: str) -> None:
        self._get(vm_id)
        if self._pending:
            self.refused += 1
            raise HypervisorError(9, BUSY)
        if self.requests == 1:
            return
        self._pending = True
        asyncio.get_running_loop().call_later(self.work, asyncio.ensure_future, super().handle(vm_id, alias))


class _EventLosingGuest(_Guest):
    """Releases the NIC on the first request, but its DEVICE_REMOVED never arrives."""

    async def handle(self, vm_id: str, alias: str) -> None:
        if self.requests == 1:
            self.remove_quietly(vm_id, alias)
            return
        await super().handle(vm_id, alias)  # libvirt: device not found (99)


class _FailingResend(_Guest):
    """The first request is lost; the re-send fails for a reason that is a real failure."""

    async def handle(self, vm_id: str, alias: str) -> None:
        self._get(vm_id)
        if self.requests > 1:
            raise HypervisorError(55, "Requested operation is not valid: domain is not running")


class _RefusingGuest(_Guest):
    """Misses the first request and refuses the second (DEVICE_REMOVAL_FAILED)."""

    async def handle(self, vm_id: str, alias: str) -> None:
        self._get(vm_id)
        if self.requests > 1:
            assert self._listener is not None
            asyncio.get_running_loop().call_soon(self._listener, vm_id, alias, False)


def nic_spec(n: int = 1) -> NicSpec:
    return NicSpec.from_params({"type": "interface", "device": "bridgeless", "macAddr": f"00:1a:4a:18:00:{n:02x}",
                                "nicModel": "pv", "alias": f"ua-nic{n}"})  # fmt: skip


async def plugged(hv: _Guest, timeout: float = 1.0) -> tuple[NicService, str]:
    nics = NicService(hv, PortMirror(hv, SimulatedHostNet(hv)), timeout, unplug_retry_interval=INTERVAL)
    await hv.open(nics.on_device_event)
    vm_id = str(uuid.uuid4())
    await hv.create(to_string(build_domain(VmSpec(vm_id, f"g-{vm_id[:8]}"))))
    await nics.hotplug(vm_id, nic_spec(1))
    return nics, vm_id


def resends(nics: NicService) -> float:
    return nics.metrics.registry.get_sample_value("vdsm_agent_unplug_resends_total") or 0.0


async def aliases(nics: NicService, vm_id: str) -> set[str]:
    return {n.alias for n in parse_nics((await nics.domain(vm_id)).xml)}


@pytest.mark.parametrize("deaf", [1, 3])
async def test_requests_a_booting_guest_missed_are_sent_again_until_it_acts(
    deaf: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vdsm_agent.nics")
    hv = _BootingGuest(deaf)
    nics, vm_id = await plugged(hv)
    answer = await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    assert (answer.alias, answer.mac) == ("ua-nic1", "00:1a:4a:18:00:01")
    assert hv.requests == deaf + 1
    assert resends(nics) == deaf
    again = [m for m in caplog.messages if "sending the unplug request again" in m]
    assert len(again) == deaf and all(f"VM {vm_id}" in m and "ua-nic1" in m for m in again)
    assert await aliases(nics, vm_id) == set()


async def test_a_guest_that_answers_the_first_request_gets_no_second() -> None:
    hv = _Guest()
    nics, vm_id = await plugged(hv)
    await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    await asyncio.sleep(3 * INTERVAL)
    assert hv.requests == 1 and resends(nics) == 0


async def test_re_sends_refused_because_an_unplug_is_in_progress_are_not_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="vdsm_agent.nics")
    hv = _BusyGuest(work=5 * INTERVAL)
    nics, vm_id = await plugged(hv)
    await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    assert hv.refused >= 2  # the guest was busy for several intervals
    assert await aliases(nics, vm_id) == set()
    assert any("is in progress already" in m for m in caplog.messages)


def test_libvirts_and_qemus_words_for_a_pending_unplug() -> None:
    assert unplug_in_progress(HypervisorError(9, BUSY))
    assert unplug_in_progress(HypervisorError(1, "Hot-unplug failed: guest is busy (power indicator blinking)"))
    assert not unplug_in_progress(HypervisorError(99, "device not found: no device found with alias ua-nic1"))
    assert not unplug_in_progress(HypervisorError(55, "Requested operation is not valid: domain is not running"))


async def test_device_not_found_on_a_re_send_means_it_is_gone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vdsm_agent.nics")
    hv = _EventLosingGuest()
    nics, vm_id = await plugged(hv, timeout=10.0)
    await asyncio.wait_for(nics.hotunplug(vm_id, NicRef("ua-nic1", None)), 1.0)  # not the 10 s timeout
    assert hv.requests == 2
    assert any("ua-nic1 is gone already" in m for m in caplog.messages)
    nics.on_device_event(vm_id, "ua-nic1", True)  # should its event come after all: no news
    assert not any("after its unplug call had given up" in m or "not by an unplug" in m for m in caplog.messages)


async def test_a_guest_that_never_answers_times_out_after_a_bounded_number_of_requests() -> None:
    hv = _BootingGuest(deaf=1_000)
    nics, vm_id = await plugged(hv, timeout=0.1)
    started = asyncio.get_running_loop().time()
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    took = asyncio.get_running_loop().time() - started
    assert exc.value.error is errors.HOTUNPLUG_NIC
    assert exc.value.data == failure_data(reason=UnplugReason.TIMEOUT)
    assert 0.1 <= took < 0.1 + 3 * INTERVAL  # the timeout, not more: no re-send past it
    assert 2 <= hv.requests <= 1 + 0.1 / INTERVAL
    assert f"asked {hv.requests} times" in exc.value.message
    assert await aliases(nics, vm_id) == {"ua-nic1"}


async def test_a_re_send_refused_for_another_reason_is_50_with_libvirts_code() -> None:
    nics, vm_id = await plugged(_FailingResend())
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    assert exc.value.error is errors.HOTUNPLUG_NIC
    assert exc.value.data == failure_data(libvirt_code=55)
    assert "domain is not running" in exc.value.message


async def test_a_guest_that_refuses_after_a_re_send_is_50_refused() -> None:
    nics, vm_id = await plugged(_RefusingGuest())
    with pytest.raises(WireError) as exc:
        await nics.hotunplug(vm_id, NicRef("ua-nic1", None))
    assert exc.value.data == failure_data(reason=UnplugReason.REFUSED)
    assert await aliases(nics, vm_id) == {"ua-nic1"}


def test_the_re_send_interval_is_a_setting_above_the_pcie_button_window_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert AgentSettings().unplug_retry_interval > 5  # a second press within 5 s cancels a PCIe unplug
    conf = tmp_path / "agent.toml"
    conf.write_text("unplug_retry_interval = 8\n")
    assert build(conf, {}).unplug_retry_interval == 8.0
    monkeypatch.setenv("VDSM_AGENT_UNPLUG_RETRY_INTERVAL", "7.5")
    assert build(conf, {}).unplug_retry_interval == 7.5  # the environment wins over the file
    with pytest.raises(ConfigError, match="unplug_retry_interval must be positive"):
        AgentSettings(unplug_retry_interval=0)
