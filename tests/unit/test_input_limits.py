"""Bad input gets a 400 that says what is wrong, from the rule that lives once in
``engine/domain/limits.py``: names (one length limit, no control characters, valid Unicode), text
PostgreSQL can store (no NUL, no lone surrogate), whole numbers in range, the right JSON types.

The inputs are those that once gave a 500 or were stored as sent (issue 13); each case asserts
the fault's detail a user would read."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from engine.api import formats
from engine.api import representation as rep
from engine.domain import errors, limits, rules
from engine.domain.errors import EngineError
from engine.domain.limits import (
    MEMORY_MAX,
    MEMORY_MIN,
    NAME_MAX_LENGTH,
    PORT_MAX,
    PORT_MIN,
    VERSION_MAX,
    VERSION_MIN,
)
from engine.domain.model import Vm
from shared_schema.errors import ParamError
from shared_schema.nic import parse_mac

NAMED = ("data center", "cluster", "host", "network", "VM", "NIC")
GIB = 1024**3


def refused(call: Callable[[], object], *words: str) -> str:
    """The 400's detail, which must name ``words``; a fault never echoes more than a line."""
    with pytest.raises(EngineError) as caught:
        call()
    assert caught.value.kind.status == 400, caught.value
    detail = caught.value.detail
    assert all(w in detail for w in words), detail
    assert len(detail) < 300, detail
    return detail


def raised(refusal: EngineError | None) -> None:
    if refusal is not None:
        raise refusal


def make_vm(**changes: Any) -> Vm:
    fields: dict[str, Any] = {"id": "", "name": "web-01", "cluster_id": "c1", "os_type": "rhel_6x64",
                              "status": "down", "memory_bytes": GIB}  # fmt: skip
    return Vm(**{**fields, **changes})


# -- names ----------------------------------------------------------------------------------------

GOOD_NAMES = ["a", "web-01", "Wëb 01 (prod) ✓", "名前", "x" * NAME_MAX_LENGTH]
BAD_NAMES: list[tuple[str, str, tuple[str, ...]]] = [
    ("empty", "", ("needs a name",)),
    ("one character too long", "x" * (NAME_MAX_LENGTH + 1), ("at most 64 characters", "65")),
    ("100,000 characters (once stored)", "x" * 100_000, ("at most 64 characters", "100000")),
    ("a NUL character (once a 500)", "a\x00b", ("NUL character",)),
    ("a lone surrogate (once a 500)", "\udc00x", ("not valid Unicode",)),
    ("a tab", "a\tb", ("control characters",)),
    ("a newline", "nic1\n", ("control characters",)),
    ("DEL", "a\x7fb", ("control characters",)),
    ("a C1 control", "a\x85b", ("control characters",)),
]


@pytest.mark.parametrize("what", NAMED)
@pytest.mark.parametrize("name", GOOD_NAMES)
def test_a_name_of_up_to_64_characters_without_control_characters_is_taken(what: str, name: str) -> None:
    assert limits.refuse_name(what, name) is None


@pytest.mark.parametrize("what", NAMED)
@pytest.mark.parametrize(("name", "words"), [c[1:] for c in BAD_NAMES], ids=[c[0] for c in BAD_NAMES])
def test_a_bad_name_is_refused_saying_why(what: str, name: str, words: tuple[str, ...]) -> None:
    refused(lambda: raised(limits.refuse_name(what, name)), *words)


@pytest.mark.parametrize(("name", "words"), [c[1:] for c in BAD_NAMES], ids=[c[0] for c in BAD_NAMES])
def test_the_nic_and_vm_rules_refuse_bad_names(name: str, words: tuple[str, ...]) -> None:
    vm = make_vm()
    refused(lambda: raised(rules.refuse_nic_fields(vm, [], "", name, "virtio")), *words)
    refused(lambda: raised(rules.refuse_new_vm(make_vm(name=name))), *words)


def test_a_vm_name_also_keeps_the_hosts_rule() -> None:
    refused(lambda: raised(rules.refuse_new_vm(make_vm(name="web/01"))), "printable", "without '/'")
    refused(lambda: raised(rules.refuse_new_vm(make_vm(name="web\u200b01"))), "printable")


def test_the_documented_patterns_are_the_rules() -> None:
    """The OpenAPI document states NAME_PATTERN: it takes what the rule takes and nothing else."""
    pattern = re.compile(f"^{limits.NAME_PATTERN}$")
    for name in GOOD_NAMES:
        assert pattern.fullmatch(name)
    for _, name, _ in BAD_NAMES:
        if "\udc00" not in name:  # a lone surrogate: no JSON document carries one, the rule refuses it
            assert not pattern.fullmatch(name), repr(name)


# -- text -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"description": "a\x00b"}, ("description holds a NUL character",)),
        ({"os": {"cmdline": "quiet\x00"}}, ("os.cmdline holds a NUL character",)),
        ({"name": "\udc00x"}, ("name is not valid Unicode",)),
        ({"custom_properties": {"custom_property": [{"name": "k", "value": "\ud800"}]}}, ("not valid Unicode",)),
        ({"a\x00b": "x"}, ("a field name", "NUL")),
    ],
)
def test_text_postgresql_cannot_store_is_refused_anywhere_in_a_body(body: dict[str, Any], words: tuple[str]) -> None:
    refused(lambda: formats.refuse_bad_text(body), *words)


def test_text_with_any_other_character_is_taken() -> None:
    formats.refuse_bad_text({"description": "tab\tnewline\n\x7f\x85 ✓ \U0001f600", "list": ["ok", 1, None]})


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "number"), [(5, 5), ("5", 5), (-3, -3), (2**70, 2**70)])
def test_a_whole_number_comes_as_a_json_number_or_its_digits(value: object, number: int) -> None:
    assert limits.whole_number("port", value) == number


@pytest.mark.parametrize("value", [1e300, 1.5, 128.0, True, None, "1e9", "0x10", "١٢", " 12", "-3", "", {}, [1]])
def test_anything_else_is_not_a_whole_number(value: object) -> None:
    refused(lambda: limits.whole_number("memory", value), "memory must be a whole number")


def test_a_memory_of_1e300_is_refused_not_a_500() -> None:
    body = formats.from_json(b'{"name": "web-01", "cluster": {"id": "c1"}, "memory": 1e300}')
    refused(lambda: rep.vm_from_body(body), "memory must be a whole number", "1e+300")


@pytest.mark.parametrize(
    ("memory", "words"),
    [
        (12345678901234567890123456789, ("at most 16 TiB",)),  # 29 digits: once a 500 from PostgreSQL's bigint
        (MEMORY_MAX + 1, ("at most 16 TiB",)),
        (MEMORY_MIN - 1, ("at least 16 MiB",)),
        (0, ("at least 16 MiB",)),
        (-1, ("at least 16 MiB",)),
    ],
)
def test_memory_out_of_range_is_refused(memory: int, words: tuple[str]) -> None:
    body = formats.from_json(b'{"name": "web-01", "cluster": {"id": "c1"}, "memory": %d}' % memory)
    refused(lambda: raised(rules.refuse_new_vm(rep.vm_from_body(body))), *words)


@pytest.mark.parametrize("memory", [MEMORY_MIN, GIB, MEMORY_MAX])
def test_memory_in_range_is_taken(memory: int) -> None:
    assert rules.refuse_new_vm(make_vm(memory_bytes=memory)) is None


@pytest.mark.parametrize(
    ("what", "low", "high"), [("version.major", VERSION_MIN, VERSION_MAX), ("port", PORT_MIN, PORT_MAX)]
)
def test_numbers_in_range_are_taken_and_one_past_is_refused(what: str, low: int, high: int) -> None:
    assert limits.refuse_range(what, low, low, high) is None
    assert limits.refuse_range(what, high, low, high) is None
    refused(lambda: raised(limits.refuse_range(what, low - 1, low, high)), f"{what} must be {low}-{high}")
    refused(lambda: raised(limits.refuse_range(what, high + 1, low, high)), f"{what} must be {low}-{high}")


def test_a_cluster_version_above_the_int32_range_is_refused_not_a_500() -> None:
    version = rep.version_from_body({"version": {"major": 2**40, "minor": 1}})
    refused(
        lambda: raised(limits.refuse_range("version.major", version.major, VERSION_MIN, VERSION_MAX)),
        "version.major must be 0-2147483647, got 1099511627776",
    )


@pytest.mark.parametrize("address", ["127.0.0.1", "host-1.example.com", "::1", "fe80::1"])
def test_a_host_address_is_a_dns_name_or_an_ip_address(address: str) -> None:
    assert limits.refuse_host_address(address) is None


@pytest.mark.parametrize("address", ["", "a b", "https://x/", "x/../y", "h@st", "host\n", "a" * 254])
def test_anything_else_is_not_a_host_address(address: str) -> None:
    refused(lambda: raised(limits.refuse_host_address(address)), "host")


# -- JSON types and documents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: rep.nic_fields({"name": {}}), ("name must be text, got {}",)),  # once stored as the name "{}"
        (lambda: rep.text({"name": {}}, "name"), ("name must be text, got {}",)),
        (lambda: rep.vm_from_body({"name": {}, "cluster": {"id": "c1"}}), ("name must be text",)),
        (lambda: rep.nic_fields({"name": None}), ("name must be text, got None",)),
        (lambda: rep.nic_fields({"linked": {}}), ("linked must be true or false",)),
        (lambda: rep.version_from_body({"version": {"major": [4], "minor": 7}}), ("version.major",)),
        (lambda: rep.port({"port": "54321x"}), ("port must be a whole number",)),
        (
            lambda: rep.vm_from_body(
                {
                    "name": "v",
                    "cluster": {"id": "c1"},
                    "custom_properties": {"custom_property": [{"name": "k", "value": {}}]},
                }
            ),
            ("custom_property must be a list of {name, value} texts",),
        ),
        (lambda: rep.placement_host({"vm": {"placement_policy": "h1"}}), ("vm.placement_policy must be an object",)),
        (lambda: rep.nic_fields({"mac": {}}), ("mac needs an address",)),
        (lambda: rep.vm_from_body({"name": "v", "cluster": {"id": "c1"}, "custom_properties": ""}), ("an object",)),
    ],
)
def test_a_wrong_json_type_is_refused_not_stringified(call: Callable[[], object], words: tuple[str]) -> None:
    refused(call, *words)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"memory": NaN}', ("NaN is not a number",)),
        (b'{"memory": Infinity}', ("Infinity is not a number",)),
        (b'{"memory": ' + b"9" * 5000 + b"}", ("not valid JSON",)),  # past Python's 4300-digit limit
        (b"[" * 100_000 + b"]" * 100_000, ("nests too deeply",)),
        (b'{"name": "\xff"}', ("not valid JSON",)),
        (b'["a list"]', ("must be a JSON object",)),
    ],
    ids=["NaN", "Infinity", "5000 digits", "deep", "not UTF-8", "not an object"],
)
def test_json_that_cannot_be_read_is_a_400(data: bytes, words: tuple[str]) -> None:
    refused(lambda: formats.from_json(data), *words)


def test_xml_cannot_carry_nul_and_a_c1_control_in_a_name_is_refused_by_the_rule() -> None:
    refused(lambda: formats.from_xml(b"<nic><name>a&#0;b</name></nic>"), "not a well-formed XML document")
    body = formats.from_xml("<nic><name>a\x85b</name></nic>".encode())
    fields, _ = rep.nic_fields(body)
    assert fields.name is not None
    refused(lambda: raised(limits.refuse_name("NIC", fields.name or "")), "control characters")


def test_a_refusal_never_echoes_a_megabyte() -> None:
    detail = refused(lambda: rep.nic_fields({"name": ["x" * 1_000_000]}), "name must be text")
    assert "1000004 characters" in detail
    assert errors.INVALID.status == 400


def test_an_empty_xml_element_where_an_object_belongs_is_an_empty_object() -> None:
    """XML cannot tell empty text from an empty object: ``<custom_properties/>`` is the latter."""
    vm = rep.vm_from_body(formats.from_xml(b'<vm><name>v</name><cluster id="c1"/><custom_properties/></vm>'))
    assert vm.custom_properties == {}
    start = formats.from_xml(b"<action><vm><placement_policy><hosts>\n</hosts></placement_policy></vm></action>")
    assert rep.placement_host(start) is None


@pytest.mark.parametrize(
    "mac", ["56:6f:1a:00:00:2a", "56:6F:1A:00:00:2A", "00:00:00:00:00:00", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff",
            "56:6f:1a:00:00", "56-6f-1a-00-00-2a", "56:6f:1a:00:00:2a\n", "g6:6f:1a:00:00:2a"],
)  # fmt: skip
def test_the_documented_mac_pattern_is_the_agents_rule(mac: str) -> None:
    try:
        parse_mac(mac)
        taken = True
    except ParamError:
        taken = False
    assert bool(re.fullmatch(f"^{limits.MAC_PATTERN}$", mac)) == taken


@pytest.mark.parametrize("cmdline", ["console=ttyS0\x07", "quiet\nrd.break", "a\x00b"])
def test_a_kernel_command_line_the_host_would_refuse_is_refused_when_the_vm_is_created(cmdline: str) -> None:
    vm = Vm(id="", name="v", cluster_id="c", os_type="rhel_6x64", status="down", memory_bytes=128 * 2**20,
            kernel="vmlinuz", initrd="initrd.img", cmdline=cmdline)  # fmt: skip
    refusal = rules.refuse_new_vm(vm)
    assert refusal is not None and refusal.kind is errors.INVALID and "os.cmdline" in refusal.detail
    assert rules.refuse_new_vm(Vm(**{**vm.__dict__, "cmdline": "console=ttyS0 quiet"})) is None
