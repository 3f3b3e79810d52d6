"""The MAC pool as an operator sees and grows it (oVirt's /macpools): the default range, ranges
replaced in JSON and XML, each bad change refused with its reason and nothing changed, and NIC adds
taking MACs from the new ranges at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from devtools.engine_proc import EngineClient, run_engine
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.macpool import DEFAULT_POOL_ID
from engine.services import macpools, nics
from engine.services.macpools import MacPoolFields
from engine.services.nics import NicFields
from tests.integration.conftest import USER, Running

POOL = f"/macpools/{DEFAULT_POOL_ID}"
DEFAULT_RANGE = {"from": "56:6f:1a:00:00:00", "to": "56:6f:1a:00:ff:ff"}
LAB_RANGE = {"from": "02:00:00:00:00:00", "to": "02:00:00:00:00:ff"}


def ranges(*pairs: dict[str, str]) -> dict[str, Any]:
    return {"ranges": {"range": list(pairs)}}


async def xml(engine: EngineClient, method: str, path: str, body: str = "") -> tuple[int, etree._Element]:
    """A request as the oVirt SDK sends it: XML in, XML out."""
    headers = {"Authorization": f"Bearer {engine.token}", "Content-Type": "application/xml"}
    url = f"{engine.base}/ovirt-engine/api{path}"
    async with engine.session.request(method, url, data=body.encode(), headers=headers) as resp:
        assert resp.content_type == "application/xml"
        return resp.status, etree.fromstring(await resp.read())


async def test_the_pool_shows_its_default_range_and_takes_new_ranges_in_json_and_xml(
    database_url: str, output_dir: Path
) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret") as api:
        (pool,) = (await api.ok("GET", "/macpools"))["mac_pool"]
        assert pool == {
            "id": DEFAULT_POOL_ID, "href": f"/ovirt-engine/api{POOL}", "name": "Default", "description": "",
            "allow_duplicates": False, "default_pool": True, "ranges": {"range": [DEFAULT_RANGE]},
        }  # fmt: skip
        assert await api.ok("GET", POOL) == pool
        status, listed = await xml(api, "GET", "/macpools")
        assert status == 200 and listed.tag == "mac_pools"
        assert listed.xpath("mac_pool/@id") == [DEFAULT_POOL_ID]
        assert listed.xpath("mac_pool/ranges/range/from/text()") == ["56:6f:1a:00:00:00"]
        assert listed.xpath("mac_pool/ranges/range/to/text()") == ["56:6f:1a:00:ff:ff"]

        # JSON: a second range, and a description.
        grown = await api.ok("PUT", POOL, {"description": "lab", **ranges(DEFAULT_RANGE, LAB_RANGE)})
        assert grown["ranges"]["range"] == [DEFAULT_RANGE, LAB_RANGE]
        assert (grown["name"], grown["description"]) == ("Default", "lab")
        assert await api.ok("GET", POOL) == grown

        # XML, as the SDK sends it: ranges replaced as a whole; upper case is stored as MACs are shown.
        body = ("<mac_pool><name>lab-pool</name><ranges><range><from>02:00:00:00:10:00</from>"
                "<to>02:00:00:00:10:FF</to></range></ranges></mac_pool>")  # fmt: skip
        status, answer = await xml(api, "PUT", POOL, body)
        assert status == 200 and answer.tag == "mac_pool" and answer.get("id") == DEFAULT_POOL_ID
        assert answer.findtext("name") == "lab-pool" and answer.findtext("description") == "lab"
        assert answer.xpath("ranges/range/from/text()") == ["02:00:00:00:10:00"]
        assert answer.xpath("ranges/range/to/text()") == ["02:00:00:00:10:ff"]
        assert (answer.findtext("allow_duplicates"), answer.findtext("default_pool")) == ("false", "true")
        assert (await api.ok("GET", POOL))["ranges"]["range"] == [
            {"from": "02:00:00:00:10:00", "to": "02:00:00:00:10:ff"}
        ]

        # Each change is in the audit log, with the ranges it left.
        events = [e for e in (await api.ok("GET", "/events"))["event"] if e["code"] == macpools.MAC_POOL_UPDATED]
        assert [e["description"] for e in events] == [
            "MAC pool lab-pool was updated. It was named Default. Its ranges are now 02:00:00:00:10:00-"
            "02:00:00:00:10:ff (256 MACs); new NICs take the first free MAC of these.",
            "MAC pool Default was updated. Its ranges are now 56:6f:1a:00:00:00-56:6f:1a:00:ff:ff (65,536 MACs), "
            "02:00:00:00:00:00-02:00:00:00:00:ff (256 MACs); new NICs take the first free MAC of these.",
        ]
        assert all(e["user"]["user_name"] == "admin@internal" for e in events)


OVERLAPPING = ranges(LAB_RANGE, {"from": "02:00:00:00:00:80", "to": "02:00:00:00:01:7f"})
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    # (what, body, fault code, what the fault says)
    ("not a MAC", ranges({"from": "56:6f:1a:00:00", "to": "56:6f:1a:00:00:ff"}), "INVALID_MAC_ADDRESS",
     "range 1 from: expected a MAC address like 00:1a:4a:16:01:51, got '56:6f:1a:00:00'"),
    ("a multicast end", ranges(LAB_RANGE, {"from": "03:00:00:00:00:00", "to": "03:00:00:00:00:ff"}),
     "INVALID_MAC_ADDRESS", "range 2 from: 03:00:00:00:00:00 is a multicast address"),
    ("from after to", ranges({"from": "02:00:00:00:00:ff", "to": "02:00:00:00:00:00"}), "INVALID_MAC_POOL_RANGES",
     "range 1 (02:00:00:00:00:ff-02:00:00:00:00:00): from is after to"),
    ("a range across multicast MACs", ranges({"from": "56:ff:ff:ff:ff:00", "to": "58:00:00:00:00:ff"}),
     "INVALID_MAC_POOL_RANGES", "crosses into multicast MACs (57:...)"),
    ("a range over 2^24 MACs", ranges({"from": "02:00:00:00:00:00", "to": "02:00:01:00:00:00"}),
     "INVALID_MAC_POOL_RANGES", "holds 16,777,217 MACs; a range holds at most 16,777,216"),
    ("overlapping ranges", OVERLAPPING, "INVALID_MAC_POOL_RANGES",
     "ranges 1 (02:00:00:00:00:00-02:00:00:00:00:ff) and 2 (02:00:00:00:00:80-02:00:00:00:01:7f) overlap"),
    ("no range", ranges(), "INVALID_MAC_POOL_RANGES", "a MAC pool needs at least one range"),
    ("65 ranges", ranges(*({"from": f"02:00:00:00:{n:02x}:00", "to": f"02:00:00:00:{n:02x}:ff"} for n in range(65))),
     "INVALID_MAC_POOL_RANGES", "a MAC pool has at most 64 ranges; got 65"),
    ("a range without its end", ranges({"from": "02:00:00:00:00:00"}), "INVALID_MAC_POOL_RANGES",
     "range 1 needs from and to"),
    ("duplicates allowed", {"allow_duplicates": True}, "INVALID_REQUEST",
     "duplicate MAC addresses are not supported"),
    ("not the default pool", {"default_pool": False}, "INVALID_REQUEST", "it stays the default"),
    ("an empty name", {"name": ""}, "INVALID_REQUEST", "a MAC pool needs a name"),
]  # fmt: skip


async def test_each_bad_change_gets_a_400_that_says_why_and_changes_nothing(
    database_url: str, output_dir: Path
) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret", readonly_password="peek") as api:
        before = await api.ok("GET", POOL)
        wrong = []
        for what, body, code, says in REFUSED:
            status, fault = await api.fault("PUT", POOL, {"name": "renamed", **body})
            if (status, fault.get("code")) != (400, code) or says not in fault["detail"]:
                wrong.append(f"{what}: {status} {fault}")
        assert not wrong, "\n".join(wrong)
        assert await api.ok("GET", POOL) == before  # not even the name changed
        failed = [e for e in (await api.ok("GET", "/events"))["event"] if e["code"] == macpools.MAC_POOL_UPDATE_FAILED]
        # Audited as failed: every refusal but the range without its end (the body's reader refuses it).
        assert len(failed) == len(REFUSED) - 1
        assert failed[0]["description"] == "Failed to update MAC pool Default: a MAC pool needs a name"

        # Another pool's id, a reader, and methods the pool does not have.
        status, fault = await api.fault("PUT", "/macpools/00000000-0000-0000-0000-000000000000", {"name": "x"})
        assert (status, fault["code"]) == (404, "MAC_POOL_NOT_FOUND")
        reader = EngineClient(api.base, api.session)
        await reader.login("readonly@internal", "peek")
        assert (await reader.ok("GET", "/macpools"))["mac_pool"] == [before]
        status, fault = await reader.fault("PUT", POOL, ranges(LAB_RANGE))
        assert status == 403 and "may read but not change" in fault["detail"]
        for method, path, allowed in (("POST", "/macpools", "GET"), ("DELETE", POOL, "GET, PUT")):
            async with api.session.request(method, f"{api.base}/ovirt-engine/api{path}",
                                           headers={"Authorization": f"Bearer {api.token}"}) as resp:  # fmt: skip
                assert resp.status == 405 and resp.headers["Allow"].replace("HEAD, ", "") == allowed
        assert await api.ok("GET", POOL) == before


async def test_the_pool_needs_a_login(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret") as api:
        anonymous = EngineClient(api.base, api.session)
        for method, path, body in (("GET", "/macpools", None), ("GET", POOL, None), ("PUT", POOL, ranges(LAB_RANGE))):
            status, fault = await anonymous.fault(method, path, body)
            assert (status, fault["code"]) == (401, "UNAUTHORIZED")
        assert (await api.ok("GET", POOL))["ranges"]["range"] == [DEFAULT_RANGE]


# -- NIC adds take MACs from the ranges as they are now (the services, with the scripted fake host) ----


async def set_ranges(r: Running, *pairs: tuple[str, str]) -> None:
    await macpools.update_mac_pool(r.ctx, USER, DEFAULT_POOL_ID, MacPoolFields(ranges=pairs))


async def add(r: Running, name: str) -> str:
    nic = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name=name, profile_id=r.profile.id), activate=False)
    return nic.mac


async def test_a_grown_pool_hands_out_its_second_range_once_the_first_is_used_up(running: Running) -> None:
    r = running
    assert r.nic1.mac == "56:6f:1a:00:00:00"
    await set_ranges(r, ("56:6f:1a:00:00:00", "56:6f:1a:00:00:01"))  # two MACs, one of them nic1's
    assert await add(r, "n2") == "56:6f:1a:00:00:01"
    with pytest.raises(EngineError) as refused:
        await add(r, "n3")
    assert refused.value.kind is errors.MAC_POOL_EMPTY

    await set_ranges(r, ("56:6f:1a:00:00:00", "56:6f:1a:00:00:01"), ("02:00:00:00:00:00", "02:00:00:00:00:0f"))
    assert [await add(r, name) for name in ("n3", "n4")] == ["02:00:00:00:00:00", "02:00:00:00:00:01"]


async def test_new_ranges_start_again_at_their_first_free_mac(running: Running) -> None:
    r = running
    second, third = await add(r, "n2"), await add(r, "n3")
    assert (second, third) == ("56:6f:1a:00:00:01", "56:6f:1a:00:00:02")
    async with r.ctx.transaction() as repo:
        n2 = next(n for n in await repo.nics(r.vm.id) if n.name == "n2")
    await nics.remove_nic(r.ctx, USER, r.vm.id, n2.id)
    assert await add(r, "n4") == "56:6f:1a:00:00:03"  # the cursor moves on; the gap waits

    # Ranges replaced: the next add takes the first free MAC of the new ones, the gap included.
    await set_ranges(r, ("56:6f:1a:00:00:00", "56:6f:1a:00:00:ff"))
    assert await add(r, "n5") == "56:6f:1a:00:00:01"
    await set_ranges(r, ("02:00:00:00:00:00", "02:00:00:00:00:ff"))
    assert await add(r, "n6") == "02:00:00:00:00:00"
    # MACs in use outside the new ranges stay with their NICs.
    async with r.ctx.transaction() as repo:
        assert {n.name: n.mac for n in await repo.nics(r.vm.id)}["nic1"] == "56:6f:1a:00:00:00"


async def test_ranges_change_only_after_adds_that_read_the_old_ones_have_ended(running: Running) -> None:
    r = running
    async with r.ctx.transaction() as repo:
        old_ranges, _ = await repo.take_mac_offset()  # an add in flight: it picks from these
        change = asyncio.create_task(set_ranges(r, ("02:00:00:00:00:00", "02:00:00:00:00:ff")))
        await asyncio.sleep(0.5)
        assert not change.done()  # it waits for the add, which still sees the old ranges and cursor
        assert old_ranges == [("56:6f:1a:00:00:00", "56:6f:1a:00:ff:ff")]
    await change
    assert await add(r, "n2") == "02:00:00:00:00:00"
