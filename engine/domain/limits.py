"""What a request may carry, each limit defined once: names, free text and numbers.

    names       1-64 characters, no control characters (C0, DEL, C1), valid Unicode: data centers,
                clusters, hosts, networks, VMs (also the host's rule: printable, no '/') and NICs
    text        anything but NUL, valid Unicode (descriptions, command lines, ...): PostgreSQL
                cannot store NUL in text, and a lone surrogate cannot be encoded as UTF-8
    addresses   a host's: a DNS name or an IP address (it becomes part of the agent's URL)
    numbers     whole numbers in the ranges below (the database's integer columns hold them)
    MAC pool    at most MAC_POOL_RANGES_MAX ranges of at most MAC_RANGE_SIZE_MAX MACs each

The API refuses any text that breaks the text rule before a handler runs
(``engine/api/formats.py``); the use cases check names and ranges with the ``refuse_*`` functions
here, as they check the canDo rules.  The OpenAPI document states the same limits from these
constants (``engine/api/openapi.py``); the patterns are written so that Python's ``re`` and
ECMA-262 read them alike.
"""

from __future__ import annotations

import re

from engine.domain import errors
from engine.domain.errors import EngineError
from shared_schema.vm import MIN_MEMORY_MIB, VM_NAME_MAX_LENGTH

Refusal = EngineError | None

NAME_MAX_LENGTH = VM_NAME_MAX_LENGTH  # one limit for every name; a VM's is the host's (libvirt's)
CONTROL_CHARACTERS = r"\u0000-\u001f\u007f-\u009f"  # Unicode category Cc, as a character class
NAME_PATTERN = rf"[^{CONTROL_CHARACTERS}]{{1,{NAME_MAX_LENGTH}}}"
NAME_RULE = f"1-{NAME_MAX_LENGTH} characters without control characters"
# A VM's name is also the host's domain name: printable and without '/' (shared_schema.vm's rule,
# which is stricter than a pattern can say).
VM_NAME_PATTERN = rf"[^/{CONTROL_CHARACTERS}]{{1,{NAME_MAX_LENGTH}}}"
TEXT_PATTERN = r"[^\u0000]*"
# Where a host's agent is reached: a DNS name or an IP address, nothing that could bend its URL.
HOST_ADDRESS_PATTERN = r"[A-Za-z0-9.:-]{1,253}"
HOST_ADDRESS_RULE = "a DNS name or an IP address: 1-253 of A-Z a-z 0-9 . : -"
_HOST_ADDRESS = re.compile(HOST_ADDRESS_PATTERN)
# A NIC's MAC as the document states shared_schema.nic.parse_mac's rule: unicast (the first
# octet even), either case (a test compares the two).
MAC_PATTERN = r"[0-9A-Fa-f][02468ACEace](:[0-9A-Fa-f]{2}){5}"
_NAME = re.compile(NAME_PATTERN)
_SURROGATE = re.compile("[\ud800-\udfff]")

INT32_MAX = 2**31 - 1  # PostgreSQL's integer
VERSION_MIN, VERSION_MAX = 0, INT32_MAX  # a cluster's compatibility version, major and minor
PORT_MIN, PORT_MAX = 1, 65535
MIB = 1024 * 1024
MEMORY_MIN = MIN_MEMORY_MIB * MIB
MEMORY_MAX = 16 * 1024 * MIB * 1024  # 16 TiB: above any host's, far inside PostgreSQL's bigint
# A network QoS's rates, in oVirt's units and within oVirt's default limits (MaxAverageNetworkQoSValue,
# MaxPeakNetworkQoSValue, MaxBurstNetworkQoSValue): average and peak in Mbps, burst in MB.
QOS_AVERAGE_MAX, QOS_PEAK_MAX, QOS_BURST_MAX = 1024, 2048, 10240
# The MAC pool (engine/domain/macpool.py refuse_ranges).  The allocator walks a range MAC by MAC in
# Python (macpool.next_free, free_macs: the cursor's look for the next free MAC, and the gap scan once
# the cursor has passed the last range), so a range's size bounds the longest walk an add can make.
# A range is at most one OUI's whole block (xx:xx:xx:00:00:00-xx:xx:xx:ff:ff:ff, 2^24 MACs): far more
# NICs than one engine keeps, and a walk over all of it takes about a second.  Pools have few ranges
# (oVirt's, a handful); 64 of them is 2^30 MACs in all.
MAC_RANGE_SIZE_MAX = 2**24
MAC_POOL_RANGES_MAX = 64
# oVirt's JSON writes numbers as decimal text, and XML carries nothing else: both are read.
DIGITS_PATTERN = r"[0-9]{1,20}"  # no number here may be negative
_DIGITS = re.compile(DIGITS_PATTERN)


def shown(value: object, limit: int = 40) -> str:
    """A value as an error message quotes it: its repr, cut short (a fault never echoes a megabyte)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def refuse_text(where: str, text: str) -> Refusal:
    """Text that PostgreSQL could not store: a NUL character, or a lone surrogate (not Unicode)."""
    if "\x00" in text:
        return EngineError(errors.INVALID, f"{where} holds a NUL character, which no text may hold")
    if _SURROGATE.search(text):
        return EngineError(errors.INVALID, f"{where} is not valid Unicode (it holds a lone surrogate)")
    return None


def refuse_name(what: str, name: str) -> Refusal:
    """The name rule, for a data center, cluster, host, network, VM or NIC (``what``)."""
    if not name:
        return EngineError(errors.INVALID, f"a {what} needs a name")
    if len(name) > NAME_MAX_LENGTH:
        return EngineError(
            errors.INVALID, f"a {what} name is at most {NAME_MAX_LENGTH} characters; this one has {len(name)}"
        )
    bad = refuse_text(f"the {what} name", name)
    if bad is None and not _NAME.fullmatch(name):
        bad = EngineError(errors.INVALID, f"a {what} name may not hold control characters, got {shown(name)}")
    return bad


def refuse_host_address(address: str) -> Refusal:
    if not address:
        return EngineError(errors.INVALID, "a host needs an address (where its agent answers)")
    if not _HOST_ADDRESS.fullmatch(address):
        return EngineError(errors.INVALID, f"a host address is {HOST_ADDRESS_RULE}; got {shown(address)}")
    return None


def refuse_range(what: str, value: int, low: int, high: int) -> Refusal:
    if not low <= value <= high:
        return EngineError(errors.INVALID, f"{what} must be {low}-{high}, got {shown(value)}")
    return None


def refuse_memory(memory_bytes: int) -> Refusal:
    if memory_bytes < MEMORY_MIN:
        return EngineError(
            errors.INVALID, f"memory must be at least {MIN_MEMORY_MIB} MiB, got {shown(memory_bytes)} bytes"
        )
    if memory_bytes > MEMORY_MAX:
        tib = MEMORY_MAX // MIB // 1024 // 1024
        return EngineError(errors.INVALID, f"memory must be at most {tib} TiB, got {shown(memory_bytes)} bytes")
    return None


def whole_number(what: str, value: object) -> int:
    """An integer as JSON (a number) or XML (its digits) gives it; a fraction, a bool or anything
    else is a 400 that says what was expected.  The range is the caller's rule."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise EngineError(errors.INVALID, f"{what} must be a whole number, got {shown(value)}")
