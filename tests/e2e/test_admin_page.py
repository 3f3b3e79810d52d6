"""The admin page in real Chromium, against the real engine, agent and guest."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from devtools import guest
from devtools.agent_proc import run_agent
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup, boot_vm
from tests.e2e.test_engine_monitoring import detach_behind_the_engines_back
from tests.e2e.test_engine_story import live_macs

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def web_vm(engine_setup: EngineSetup) -> AsyncIterator[dict[str, Any]]:
    vm = await boot_vm(engine_setup, "web-vm")
    yield {"vm": vm, "console": vm["console"]}
    with contextlib.suppress(AssertionError):
        await engine_setup.api.ok("POST", f"/vms/{vm['id']}/stop")


@pytest.fixture
async def page(
    browser: Browser, engine_setup: EngineSetup, output_dir: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=engine_setup.api.base, viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    yield opened
    shots = output_dir / "browser"
    shots.mkdir(exist_ok=True)
    await opened.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    await context.close()


async def login(page: Page, user: str = "admin@internal", password: str = ADMIN_PASSWORD) -> None:
    await page.goto("/")
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Virtual Machines")).to_be_visible()


async def open_vm(page: Page, name: str = "web-vm") -> None:
    await page.get_by_role("button", name=name, exact=True).click()
    await expect(page.get_by_role("heading", name=f"Network Interfaces of {name}")).to_be_visible()


def row(page: Page, nic_name: str) -> Any:
    return page.locator("#nics tr[data-nic]").filter(has=page.locator(".nic-name", has_text=nic_name))


async def new_nic(page: Page, name: str, activate: bool = True, profile_label: str | None = None) -> None:
    await page.get_by_role("button", name="New", exact=True).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Activate")).to_be_checked()  # the seed: checked by default
    await dialog.get_by_label("Name", exact=True).fill(name)
    if profile_label:
        await dialog.get_by_label("Network / profile").select_option(label=profile_label)
    if not activate:
        await dialog.get_by_label("Activate").uncheck()
    await dialog.get_by_role("button", name="OK").click()


async def test_new_nic_with_activate_is_plugged_and_live(
    page: Page, web_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    await login(page)
    await open_vm(page)
    await new_nic(page, "page1")
    nic = row(page, "page1")
    await expect(nic.locator(".status-text")).to_have_text("Plugged")
    await expect(nic.locator(".nic-status")).to_have_attribute("title", "Plugged into the VM")
    mac = (await nic.locator(".nic-mac").inner_text()).strip()
    live = live_macs(libvirt_conn, web_vm["vm"]["id"])
    assert mac in live
    await expect(nic.locator(".nic-pci")).to_have_text(live[mac])  # the address the host chose, as stored


async def test_deactivate_then_remove(page: Page, web_vm: dict[str, Any], libvirt_conn: libvirt.virConnect) -> None:
    await login(page)
    await open_vm(page)
    await new_nic(page, "page2")
    nic = row(page, "page2")
    await expect(nic.locator(".status-text")).to_have_text("Plugged")
    mac = (await nic.locator(".nic-mac").inner_text()).strip()
    await asyncio.to_thread(guest.wait_for_console, web_vm["console"], mac, 30.0)
    await nic.get_by_role("radio").check()
    await expect(page.get_by_role("button", name="Remove")).to_be_disabled()  # plugged into a running VM
    await page.get_by_role("button", name="Deactivate").click()
    await expect(nic.locator(".status-text")).to_have_text("Unplugged")
    assert mac not in live_macs(libvirt_conn, web_vm["vm"]["id"])
    await expect(nic.locator(".nic-pci")).to_have_text("")  # the address is cleared
    await expect(page.get_by_role("button", name="Remove")).to_be_enabled()
    await page.get_by_role("button", name="Remove").click()
    await expect(row(page, "page2")).to_have_count(0)
    await expect(page.get_by_role("status")).to_have_text("NIC page2 removed.")


async def test_a_nic_unplugged_behind_the_engines_back_and_the_hosts_show_without_reload(
    page: Page, engine_setup: EngineSetup, web_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    await login(page)
    hosts = page.locator("#hosts tr[data-host]")
    await expect(hosts.filter(has_text="this-host").locator(".host-status")).to_have_text("up")
    await open_vm(page)
    await new_nic(page, "behind", profile_label="red / red")
    nic = row(page, "behind")
    await expect(nic.locator(".status-text")).to_have_text("Plugged")
    mac = (await nic.locator(".nic-mac").inner_text()).strip()
    await asyncio.to_thread(guest.wait_for_console, web_vm["console"], mac, 30.0)
    # virsh, not the page: monitoring notices, and the page shows it without a reload.
    await detach_behind_the_engines_back(libvirt_conn, web_vm["vm"]["id"], mac)
    await expect(nic.locator(".status-text")).to_have_text("Unplugged", timeout=15_000)
    await expect(page.locator("#events .event-text").first).to_contain_text("was unplugged on host this-host")


async def test_edit_of_a_plugged_nic_on_the_running_vm_changes_only_its_link(
    page: Page, web_vm: dict[str, Any]
) -> None:
    await login(page)
    await open_vm(page)
    await new_nic(page, "page3")
    nic = row(page, "page3")
    await expect(nic.locator(".status-text")).to_have_text("Plugged")
    mac = (await nic.locator(".nic-mac").inner_text()).strip()
    await asyncio.to_thread(guest.wait_for_console, web_vm["console"], f"NETDEV-CARRIER {mac} up", 30.0)
    await nic.get_by_role("radio").check()
    edit = page.get_by_role("button", name="Edit")
    await expect(edit).to_be_enabled()  # for the link alone
    refusal = (
        "NIC page3 is plugged into running VM web-vm; only its link state (linked) can change while it is: "
        "deactivate it (or stop the VM) before editing anything else"
    )
    await expect(edit).to_have_attribute("title", f"Only the link state can change: {refusal}")
    await expect(page.locator("#nic-help")).to_contain_text(f"Edit: {refusal}")

    seen = web_vm["console"].stat().st_size
    await edit.click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.locator("#nic-link-only")).to_have_text(f"Only the link state can change now: {refusal}")
    for field in ("Name", "Network / profile", "Model", "MAC address"):
        await expect(dialog.get_by_label(field, exact=field == "Name")).to_be_disabled()
    await expect(dialog.get_by_label("Link up")).to_be_checked()
    await dialog.get_by_label("Link up").uncheck()
    await dialog.get_by_role("button", name="OK").click()
    await expect(page.get_by_role("status")).to_have_text("NIC page3: link down.")
    await expect(nic.locator(".nic-link")).to_have_text("Down")
    await expect(nic.locator(".status-text")).to_have_text("Plugged")  # never unplugged
    await asyncio.to_thread(guest.wait_for_console, web_vm["console"], f"NETDEV-CARRIER {mac} down", 30.0, seen)


async def test_the_nic_table_shows_each_nics_profile_and_whether_it_mirrors(
    page: Page, web_vm: dict[str, Any], engine_setup: EngineSetup
) -> None:
    s = engine_setup
    await s.api.ok("POST", f"/networks/{s.network_id}/vnicprofiles", {"name": "watch", "port_mirroring": True})
    await login(page)  # (the page reads the profiles at login)
    await open_vm(page)
    await new_nic(page, "page-watch", profile_label="red / watch")
    watching = row(page, "page-watch")
    await expect(watching.locator(".status-text")).to_have_text("Plugged")
    await expect(watching.locator(".nic-profile")).to_have_text("red / watch")
    await expect(watching.locator(".nic-mirroring")).to_contain_text("Yes")
    await expect(watching.locator(".nic-mirroring span[title]")).to_have_attribute(
        "title", "Mirrors all traffic of red on its host"
    )
    await expect(row(page, "page1").locator(".nic-mirroring")).to_have_text("No")


async def test_a_nic_added_with_the_box_unchecked_stays_unplugged(
    page: Page, web_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    await login(page)
    await open_vm(page)
    await new_nic(page, "page4", activate=False)
    nic = row(page, "page4")
    await expect(nic.locator(".status-text")).to_have_text("Unplugged")
    mac = (await nic.locator(".nic-mac").inner_text()).strip()
    await page.wait_for_timeout(1500)  # a poll or two later it is still unplugged
    await expect(nic.locator(".status-text")).to_have_text("Unplugged")
    assert mac not in live_macs(libvirt_conn, web_vm["vm"]["id"])
    await nic.get_by_role("radio").check()
    await expect(page.get_by_role("button", name="Edit")).to_be_enabled()  # unplugged: may be edited


async def test_the_engines_refusal_is_shown_in_the_dialog(
    page: Page, web_vm: dict[str, Any], engine_setup: EngineSetup
) -> None:
    await engine_setup.api.ok("POST", "/networks", {"name": "nowhere", "bridge": "hpt-nosuch8",
                                                    "cluster": {"id": engine_setup.cluster_id}})  # fmt: skip
    await login(page)
    await open_vm(page)
    await new_nic(page, "page5", profile_label="nowhere / nowhere")
    error = page.get_by_role("dialog").get_by_role("alert")
    await expect(error).to_contain_text("hpt-nosuch8")
    await expect(error).to_contain_text("No such device")
    await page.get_by_role("button", name="Cancel").click()
    await expect(row(page, "page5")).to_have_count(0)  # nothing was left behind


async def test_a_change_made_through_the_api_shows_without_reload(
    page: Page, web_vm: dict[str, Any], engine_setup: EngineSetup
) -> None:
    api, vm_id = engine_setup.api, web_vm["vm"]["id"]
    nic = await api.ok("POST", f"/vms/{vm_id}/nics", {"name": "page6", "vnic_profile": {"id": engine_setup.profile_id}})
    await asyncio.to_thread(guest.wait_for_console, web_vm["console"], nic["mac"]["address"], 30.0)
    await login(page)
    await open_vm(page)
    await expect(row(page, "page6").locator(".status-text")).to_have_text("Plugged")
    await api.ok("POST", f"/vms/{vm_id}/nics/{nic['id']}/deactivate")
    await expect(row(page, "page6").locator(".status-text")).to_have_text("Unplugged")


async def test_a_read_only_user_sees_no_enabled_change_buttons(
    page: Page, web_vm: dict[str, Any], engine_setup: EngineSetup
) -> None:
    api, vm_id = engine_setup.api, web_vm["vm"]["id"]
    await api.ok("POST", f"/vms/{vm_id}/nics", {"name": "page7", "vnic_profile": {"id": engine_setup.profile_id},
                                                "plugged": False})  # fmt: skip
    await login(page, "readonly@internal", "look")
    await open_vm(page)
    await expect(page.locator("#whoami")).to_contain_text("read only")
    first = page.locator("#nics tr[data-nic]").first
    await first.get_by_role("radio").check()
    for name in ("New", "Edit", "Remove", "Activate", "Deactivate"):
        await expect(page.get_by_role("button", name=name, exact=True)).to_be_disabled()
    for button in await page.locator("#vms button.vm-start, #vms button.vm-stop").all():
        await expect(button).to_be_disabled()


async def test_an_unplug_shows_progress_while_the_guest_decides_then_the_failure_and_its_reason(
    page: Page, engine_setup: EngineSetup, libvirt_conn: libvirt.virConnect, output_dir: Path
) -> None:
    """A VM with no OS never releases a NIC: the row shows the unplug in progress, then why it failed."""
    api, s = engine_setup.api, engine_setup
    async with run_agent(output_dir / "e2e", unplug_timeout="3") as impatient:
        port = int(impatient.url.split(":")[2].split("/")[0])
        host = await api.ok("POST", "/hosts", {"name": "impatient", "address": "127.0.0.1", "port": port,
                                               "cluster": {"id": s.cluster_id}})  # fmt: skip
        vm = await api.ok(
            "POST", "/vms", {"name": "no-os", "cluster": {"id": s.cluster_id}, "os": {"type": "rhel_6x64"}}
        )
        await api.ok(
            "POST", f"/vms/{vm['id']}/start", {"vm": {"placement_policy": {"hosts": {"host": [{"id": host["id"]}]}}}}
        )
        try:
            await api.ok("POST", f"/vms/{vm['id']}/nics", {"name": "stuck", "interface": "e1000",
                                                           "vnic_profile": {"id": s.profile_id}})  # fmt: skip
            await login(page)
            await open_vm(page, "no-os")
            nic = row(page, "stuck")
            await nic.get_by_role("radio").check()
            await page.get_by_role("button", name="Deactivate").click()
            await expect(nic.locator(".status-text")).to_have_text("Unplugging…")
            await expect(page.get_by_role("button", name="Deactivate", exact=True)).to_be_disabled()  # busy
            await expect(nic.locator(".status-text")).to_have_text("Failed", timeout=15000)
            await expect(nic.locator(".nic-status")).to_have_attribute("title", re.compile("did not release"))
            await expect(page.locator("#problem")).to_contain_text("did not release")
            assert (await api.ok("GET", f"/vms/{vm['id']}/nics"))["nic"][0]["plugged"] is True  # unchanged
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                libvirt_conn.lookupByUUIDString(vm["id"]).destroy()


HOSTILE = "<img src=x onerror=alert(1)>"


async def test_hostile_names_show_as_text_and_the_page_forbids_inline_script(
    page: Page, engine_setup: EngineSetup
) -> None:
    api, s = engine_setup.api, engine_setup
    vm = await api.ok("POST", "/vms", {"name": HOSTILE, "cluster": {"id": s.cluster_id}, "os": {"type": "rhel_6x64"}})
    try:
        await api.ok("POST", f"/vms/{vm['id']}/nics", {"name": HOSTILE, "vnic_profile": {"id": s.profile_id},
                                                        "plugged": False})  # fmt: skip
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        response = await page.goto("/")
        assert response is not None
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        await login(page)
        await open_vm(page, HOSTILE)
        await expect(row(page, HOSTILE).locator(".nic-name")).to_have_text(HOSTILE)
        assert await page.locator("#vms img, #nics img").count() == 0
        assert dialogs == []
    finally:
        await api.ok("DELETE", f"/vms/{vm['id']}")


async def test_the_vm_table_pages_and_searches_instead_of_showing_every_vm(
    page: Page, web_vm: dict[str, Any], engine_setup: EngineSetup
) -> None:
    api = engine_setup.api
    made = [await api.ok("POST", "/vms", guest.engine_vm(f"zz-page-{i:03d}", engine_setup.cluster_id))
            for i in range(52)]  # fmt: skip
    try:
        total = len((await api.ok("GET", "/vms"))["vm"])
        await login(page)
        rows = page.locator("#vms tbody tr[data-vm]")
        await expect(rows).to_have_count(50)  # one page, in name order
        await expect(page.locator("#vm-page")).to_have_text("Page 1")
        await expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
        await page.get_by_role("button", name="Next page").click()
        await expect(rows).to_have_count(total - 50)
        await expect(page.get_by_role("button", name="zz-page-051", exact=True)).to_be_visible()
        await expect(page.get_by_role("button", name="Next page")).to_be_disabled()
        await page.get_by_label("Search").fill("name=zz-page-01*")
        await page.get_by_role("button", name="Search", exact=True).click()
        await expect(rows).to_have_count(10)
        await expect(page.locator("#vm-page")).to_have_text("Page 1")
        await page.get_by_label("Search").fill("colour=blue")
        await page.get_by_role("button", name="Search", exact=True).click()
        await expect(page.locator("#vm-page")).to_contain_text("not by 'colour'")  # the engine's reason
        await expect(rows).to_have_count(0)
    finally:
        for vm in made:
            await api.ok("DELETE", f"/vms/{vm['id']}")
