"""The API's XML, as oVirt's clients read and write it: golden documents for each representation,
compared after normalisation, and the reader's refusals of what it must not parse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree

from engine.api import formats
from engine.api import representation as rep
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import (
    AuditEntry,
    Cluster,
    DataCenter,
    Disk,
    Host,
    Network,
    NetworkQos,
    Nic,
    QosRate,
    Version,
    Vm,
    VnicProfile,
)
from engine.services.views import Caller
from shared_schema.nic import PciAddress

P = "/ovirt-engine/api"
VM_ID = "0a1b2c3d-0000-4000-8000-00000000000a"
NIC_ID = "0a1b2c3d-0000-4000-8000-00000000000b"


def normal(xml: bytes | str) -> bytes:
    """Canonical XML without insignificant whitespace."""
    parser = etree.XMLParser(remove_blank_text=True)
    data = xml.encode() if isinstance(xml, str) else xml
    return etree.tostring(etree.fromstring(data, parser), method="c14n")


def assert_xml(reply: formats.Reply, golden: str) -> None:
    assert normal(formats.to_xml(reply.root, reply.body)) == normal(golden)


def test_a_nic() -> None:
    nic = Nic(id=NIC_ID, vm_id=VM_ID, name="nic1", mac="56:6f:1a:00:00:2a", model="virtio", profile_id="p1",
              linked=True, plugged=False, address=PciAddress(0, 0, 3, 0))  # fmt: skip
    base = f"{P}/vms/{VM_ID}/nics/{NIC_ID}"
    assert_xml(
        formats.Reply("nic", rep.nic_json(P, nic, {"deactivate": "NIC nic1 is not plugged"})),
        f"""<nic id="{NIC_ID}" href="{base}">
              <name>nic1</name><interface>virtio</interface><mac><address>56:6f:1a:00:00:2a</address></mac>
              <linked>true</linked><plugged>false</plugged>
              <vm id="{VM_ID}" href="{P}/vms/{VM_ID}"/>
              <actions><link rel="activate" href="{base}/activate"/><link rel="deactivate" href="{base}/deactivate"/>
              </actions>
              <link rel="networkfilterparameters" href="{base}/networkfilterparameters"/>
              <link rel="reporteddevices" href="{base}/reporteddevices"/>
              <link rel="statistics" href="{base}/statistics"/>
              <vnic_profile id="p1" href="{P}/vnicprofiles/p1"/>
              <address><type>pci</type><domain>0x0000</domain><bus>0x00</bus><slot>0x03</slot>
                       <function>0x0</function></address>
              <disabled_actions><deactivate>NIC nic1 is not plugged</deactivate></disabled_actions>
            </nic>""",
    )


def test_a_list_of_vms_with_their_links() -> None:
    vm = Vm(id=VM_ID, name="web-01", cluster_id="c1", os_type="rhel_6x64", status="up", memory_bytes=2**30,
            host_id="h1", custom_properties={"console_log": "web-01.log"})  # fmt: skip
    assert_xml(
        rep.collection("vm", [rep.vm_json(P, vm)]),
        f"""<vms><vm id="{VM_ID}" href="{P}/vms/{VM_ID}">
              <name>web-01</name><status>up</status><memory>1073741824</memory>
              <cluster id="c1" href="{P}/clusters/c1"/>
              <os><type>rhel_6x64</type><kernel></kernel><initrd></initrd><cmdline></cmdline></os>
              <bios><type>i440fx_sea_bios</type></bios>
              <custom_properties><custom_property><name>console_log</name><value>web-01.log</value></custom_property>
              </custom_properties>
              <actions><link rel="start" href="{P}/vms/{VM_ID}/start"/><link rel="stop" href="{P}/vms/{VM_ID}/stop"/>
              </actions>
              <link rel="nics" href="{P}/vms/{VM_ID}/nics"/>
              <link rel="diskattachments" href="{P}/vms/{VM_ID}/diskattachments"/>
              <host id="h1" href="{P}/hosts/h1"/>
            </vm></vms>""",
    )


def test_an_empty_collection_is_its_bare_root() -> None:
    assert_xml(rep.collection("nic", []), "<nics/>")
    assert_xml(rep.collection("network_filter_parameter", []), "<network_filter_parameters/>")


def test_data_center_cluster_network_profile_host() -> None:
    assert_xml(
        formats.Reply("data_center", rep.data_center_json(P, DataCenter("d1", "Default", "main"))),
        f"""<data_center id="d1" href="{P}/datacenters/d1"><name>Default</name><description>main</description>
              <link rel="clusters" href="{P}/datacenters/d1/clusters"/>
              <link rel="networks" href="{P}/datacenters/d1/networks"/>
              <link rel="qoss" href="{P}/datacenters/d1/qoss"/></data_center>""",
    )
    assert_xml(
        formats.Reply("cluster", rep.cluster_json(P, Cluster("c1", "prod", Version(4, 7), "", "d1"))),
        f"""<cluster id="c1" href="{P}/clusters/c1"><name>prod</name><description></description>
              <version><major>4</major><minor>7</minor></version>
              <data_center id="d1" href="{P}/datacenters/d1"/>
              <link rel="networks" href="{P}/clusters/c1/networks"/></cluster>""",
    )
    assert_xml(
        formats.Reply("network", rep.network_json(P, Network("n1", "blue", "d1", "blue", frozenset({"c1"})))),
        f"""<network id="n1" href="{P}/networks/n1"><name>blue</name><bridge>blue</bridge>
              <data_center id="d1" href="{P}/datacenters/d1"/>
              <clusters><cluster id="c1" href="{P}/clusters/c1"/></clusters><usages><usage>vm</usage></usages>
              <link rel="vnicprofiles" href="{P}/networks/n1/vnicprofiles"/></network>""",
    )
    assert_xml(
        formats.Reply("vnic_profile", rep.profile_json(P, VnicProfile("p1", "blue", "n1"))),
        f"""<vnic_profile id="p1" href="{P}/vnicprofiles/p1"><name>blue</name><description></description>
              <port_mirroring>false</port_mirroring><pass_through><mode>disabled</mode></pass_through>
              <network id="n1" href="{P}/networks/n1"/></vnic_profile>""",
    )
    mirror = VnicProfile("p2", "watch", "n1", port_mirroring=True, qos_id="q1", data_center_id="d1")
    assert_xml(
        formats.Reply("vnic_profile", rep.profile_json(P, mirror)),
        f"""<vnic_profile id="p2" href="{P}/vnicprofiles/p2"><name>watch</name><description></description>
              <port_mirroring>true</port_mirroring><pass_through><mode>disabled</mode></pass_through>
              <network id="n1" href="{P}/networks/n1"/><qos id="q1" href="{P}/datacenters/d1/qoss/q1"/>
            </vnic_profile>""",
    )
    qos = NetworkQos("q1", "gold", "d1", "for web", QosRate(10, 20, 5), None)
    assert_xml(
        rep.collection("qos", [rep.qos_json(P, qos)]),
        f"""<qoss><qos id="q1" href="{P}/datacenters/d1/qoss/q1"><name>gold</name><description>for web</description>
              <type>network</type><data_center id="d1" href="{P}/datacenters/d1"/>
              <inbound_average>10</inbound_average><inbound_peak>20</inbound_peak><inbound_burst>5</inbound_burst>
            </qos></qoss>""",
    )
    assert_xml(
        formats.Reply("host", rep.host_json(P, Host("h1", "hyp-7", "c1", "192.0.2.7", 54321, "non_responsive"))),
        f"""<host id="h1" href="{P}/hosts/h1"><name>hyp-7</name><address>192.0.2.7</address><port>54321</port>
              <status>non_responsive</status><cluster id="c1" href="{P}/clusters/c1"/></host>""",
    )


def test_a_disk_attachment() -> None:
    disk = Disk("d1", VM_ID, "tiny-disk.qcow2", "cow", bootable=True)
    assert_xml(
        rep.collection("disk_attachment", [rep.disk_attachment_json(P, disk)]),
        f"""<disk_attachments><disk_attachment id="d1" href="{P}/vms/{VM_ID}/diskattachments/d1">
              <active>true</active><bootable>true</bootable><interface>virtio</interface><read_only>false</read_only>
              <disk id="d1"><name>tiny-disk.qcow2</name><format>cow</format><storage_type>image</storage_type></disk>
              <vm id="{VM_ID}" href="{P}/vms/{VM_ID}"/>
            </disk_attachment></disk_attachments>""",
    )


def test_the_api_root_an_action_an_event_and_a_fault() -> None:
    root = formats.Reply("api", rep.api_root_json(P, Caller("admin@internal", "admin")))
    xml = etree.fromstring(formats.to_xml(root.root, root.body))
    assert xml.tag == "api"
    assert {link.get("rel"): link.get("href") for link in xml.iterfind("link")}["vms"] == f"{P}/vms"
    assert xml.findtext("authenticated_user/user_name") == "admin@internal"
    assert_xml(rep.action_done("vm", {"id": "v"}), '<action><status>complete</status><vm id="v"/></action>')
    assert_xml(rep.removed(), "<action/>")
    entry = AuditEntry(7, 1012, "normal", "NIC nic1 was plugged.", datetime(2026, 11, 29, tzinfo=UTC), "admin",
                       VM_ID, NIC_ID, "nic1")  # fmt: skip
    assert_xml(
        rep.collection("event", [rep.event_json(P, entry)]),
        f"""<events><event id="7"><code>1012</code><severity>normal</severity>
              <description>NIC nic1 was plugged.</description><time>2026-11-29T00:00:00+00:00</time>
              <user><user_name>admin</user_name></user><vm id="{VM_ID}" href="{P}/vms/{VM_ID}"/>
              <nic id="{NIC_ID}"><name>nic1</name></nic></event></events>""",
    )
    fault = formats.Reply("fault", {"reason": "Operation Failed", "detail": "VM x is up", "code": "VM_STATUS_ILLEGAL",
                                    "data": {"hostCode": 49}})  # fmt: skip
    assert_xml(
        fault,
        """<fault><reason>Operation Failed</reason><detail>VM x is up</detail><code>VM_STATUS_ILLEGAL</code>
             <data><hostCode>49</hostCode></data></fault>""",
    )


def test_text_xml_cannot_carry_is_replaced_not_a_crash() -> None:
    document = formats.to_xml("nic", {"name": "a\x00b\udc00c"})
    assert etree.fromstring(document).findtext("name") == "a\ufffdb\ufffdc"


# -- reading requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        ("<nic><name>nic2</name><interface>virtio</interface><vnic_profile id='p1'/><plugged>false</plugged></nic>",
         {"name": "nic2", "interface": "virtio", "vnic_profile": {"id": "p1"}, "plugged": "false"}),
        ("<nic><mac><address>56:6f:1a:00:00:2a</address></mac></nic>", {"mac": {"address": "56:6f:1a:00:00:2a"}}),
        ("<action/>", {}),
        ("<action><async>false</async></action>", {"async": "false"}),
        ("<action><vm><placement_policy><hosts><host id='h1'/></hosts></placement_policy></vm></action>",
         {"vm": {"placement_policy": {"hosts": {"host": [{"id": "h1"}]}}}}),
        ("<vm><custom_properties><custom_property><name>k</name><value>v</value></custom_property>"
         "</custom_properties></vm>", {"custom_properties": {"custom_property": [{"name": "k", "value": "v"}]}}),
        ("<vm><bios><type>q35_sea_bios</type></bios><custom_emulated_machine>pc-q35-7.2</custom_emulated_machine>"
         "</vm>", {"bios": {"type": "q35_sea_bios"}, "custom_emulated_machine": "pc-q35-7.2"}),
        ("<vnic_profile><name>watch</name><port_mirroring>true</port_mirroring><pass_through><mode>disabled</mode>"
         "</pass_through><qos id='q1'/></vnic_profile>",
         {"name": "watch", "port_mirroring": "true", "pass_through": {"mode": "disabled"}, "qos": {"id": "q1"}}),
        ("<qos><name>gold</name><type>network</type><inbound_average>10</inbound_average></qos>",
         {"name": "gold", "type": "network", "inbound_average": "10"}),
        ("<disk_attachment><bootable>true</bootable><interface>virtio</interface><active>true</active>"
         "<disk><name>tiny-disk.img</name><format>raw</format></disk></disk_attachment>",
         {"bootable": "true", "interface": "virtio", "active": "true",
          "disk": {"name": "tiny-disk.img", "format": "raw"}}),
    ],
    ids=["nic", "mac", "empty action", "async", "placement", "one custom property", "q35 vm (as the SDK sends it)",
         "mirroring profile with a qos (the SDK's)", "network qos (the SDK's)", "disk attachment (the SDK's)"],
)  # fmt: skip
def test_xml_bodies_read_as_the_json_the_handlers_know(xml: str, expected: dict[str, Any]) -> None:
    assert formats.from_xml(xml.encode()) == expected


@pytest.mark.parametrize(
    "xml",
    [
        b"<nic><name>a</name>",
        b"not xml at all",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><nic>&lol2;</nic>',
        b'<!DOCTYPE nic SYSTEM "http://192.0.2.1/evil.dtd"><nic/>',
        b'<!DOCTYPE nic [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><nic><name>&xxe;</name></nic>',
        b"<nic><name>a</name><name>b</name></nic>",
    ],
    ids=["unclosed", "text", "entities", "external dtd", "external entity", "repeated field"],
)
def test_documents_that_must_not_be_read_are_a_400(xml: bytes) -> None:
    with pytest.raises(EngineError) as refused:
        formats.from_xml(xml)
    assert refused.value.kind is errors.INVALID and refused.value.detail
