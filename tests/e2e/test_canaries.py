"""Environment canaries: the hypervisor under every e2e test really boots a guest and hot-plugs.

These use libvirt directly, with no project code in between, so that when a feature test
fails one can tell "our code is wrong" from "this machine cannot hot-plug".
"""

from __future__ import annotations

import asyncio

import libvirt
from lxml import etree

from devtools import guest
from tests.e2e.conftest import Guest


def _live_interface(dom: libvirt.virDomain, mac: str) -> etree._Element | None:
    live = etree.fromstring(dom.XMLDesc(0))
    found = live.xpath(f"devices/interface[mac/@address='{mac}']")
    return found[0] if found else None


async def _attach(g: Guest, bridge: str, mac: str, alias: str) -> None:
    xml = (
        f"<interface type='bridge'><source bridge='{bridge}'/><model type='virtio'/>"
        f"<mac address='{mac}'/><alias name='{alias}'/></interface>"
    )
    await asyncio.to_thread(g.domain.attachDeviceFlags, xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)


async def test_guest_boots_and_says_ready(test_guest: Guest) -> None:
    assert test_guest.domain.isActive()
    assert guest.READY_MARKER in test_guest.console.read_text()


async def test_live_attach_shows_in_xml_and_in_the_guest(clean_guest: Guest, bridge: str) -> None:
    test_guest = clean_guest  # clean_guest unplugs it again and waits until the guest let go
    mac, alias = "52:54:00:e2:e0:01", "ua-canary-attach"
    seen_from = test_guest.console_size()
    await _attach(test_guest, bridge, mac, alias)
    iface = _live_interface(test_guest.domain, mac)
    assert iface is not None
    assert iface.find("alias").get("name") == alias
    assert iface.find("address").get("type") == "pci"
    assert iface.find("source").get("bridge") == bridge
    line = await test_guest.wait_console("NETDEV-ADDED", after=seen_from)
    assert line.endswith(mac)


async def test_live_detach_completes_with_device_removed(
    clean_guest: Guest, bridge: str, libvirt_conn: libvirt.virConnect
) -> None:
    test_guest = clean_guest
    mac, alias = "52:54:00:e2:e0:02", "ua-canary-detach"
    seen_from = test_guest.console_size()
    await _attach(test_guest, bridge, mac, alias)
    added = await test_guest.wait_console(mac, after=seen_from)
    netdev_name = added.split()[1]

    removed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_removed(conn: object, dom: libvirt.virDomain, dev_alias: str, opaque: object) -> None:
        if dev_alias == alias and not removed.done():
            removed.set_result(dev_alias)

    callback = libvirt_conn.domainEventRegisterAny(
        test_guest.domain, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, on_removed, None
    )
    try:
        seen_from = test_guest.console_size()
        await asyncio.to_thread(test_guest.domain.detachDeviceAlias, alias, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        assert await asyncio.wait_for(removed, 30) == alias
    finally:
        libvirt_conn.domainEventDeregisterAny(callback)
    assert _live_interface(test_guest.domain, mac) is None
    assert (await test_guest.wait_console("NETDEV-REMOVED", after=seen_from)).endswith(netdev_name)
