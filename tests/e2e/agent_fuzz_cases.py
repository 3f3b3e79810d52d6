"""What the agent fuzzer (test_agent_fuzz.py) sends, and how: Hypothesis strategies for JSON-RPC
bodies (VDSM's verbs mixed with junk, params of every JSON shape, batches of every size, malformed
bytes, megabyte strings) and HTTP around them, written by hand so that a body can hold what
json.dumps will not (NaN, 20,000 digits, 100,000 nested brackets, lone surrogates as raw bytes).

Safety: no case is a valid mutating call that could act on a VM of the host (the session guest,
or anything else running here).  A plug, unplug or destroy that would be valid goes to a VM id that
exists nowhere; a valid VM.create names the guest's id (answered 4, "exists").
:func:`acts_on_host` decides it with the agent's own parsers (shared_schema), on the very bytes sent.
"""

from __future__ import annotations

import gzip
import http.client
import json
import math
import re
import ssl
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from shared_schema import verbs
from shared_schema.errors import ParamError
from shared_schema.nic import DEVICE_KINDS, NIC_MODELS, NicRef, NicSpec, parse_vm_id
from shared_schema.vm import VmSpec
from tests.e2e.conftest import BRIDGE

with warnings.catch_warnings():  # jsonrpcserver 5.0.9 reads its schema with a deprecated importlib call
    warnings.simplefilter("ignore", DeprecationWarning)
    from vdsm_agent.app import MAX_REQUEST_BYTES
    from vdsm_agent.envelope import MAX_BATCH, MAX_DEPTH

READS = (verbs.PING, verbs.CAPABILITIES, verbs.ALL_VM_STATS, verbs.VM_FULL_LIST)
TAKES_VM_AND_NIC = {
    verbs.HOTPLUG_NIC: NicSpec,
    "hotplugNic": NicSpec,
    verbs.HOTUNPLUG_NIC: NicRef,
    "hotunplugNic": NicRef,
}
MUTATING = (verbs.CREATE, verbs.DESTROY, *TAKES_VM_AND_NIC)
TABLE = (*READS, *MUTATING)


# --- Bodies, written by hand: a case may hold what json.dumps will not (NaN, 5,000 digits) ----------


@dataclass(frozen=True)
class Raw:
    """A token written into the body as it is."""

    text: str


def dump(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k), ensure_ascii=ascii_only)}: {dump(v, ascii_only)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)  # NaN and Infinity come out as such


def encode(value: Any, ascii_only: bool) -> bytes:
    # surrogatepass: a lone surrogate written unescaped becomes bytes that are not UTF-8
    return dump(value, ascii_only).encode("utf-8", "surrogatepass")


# --- Reading JSON as the specification and the agent's documented limits say -------------------


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    if not math.isfinite(number := float(text)):
        raise ValueError(text)
    return number


def _depth(value: Any) -> int:
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((_depth(c) for c in children), default=0)
    return 0


def strict_json(body: bytes) -> Any:
    """RFC 8259 JSON within the agent's documented depth, or ValueError."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_refuse, parse_float=_finite)
        if _depth(value) > MAX_DEPTH:
            raise ValueError("too deep")
    except RecursionError:
        raise ValueError("too deep") from None
    return value


def bind(params: Any, names: tuple[str, ...]) -> list[Any] | None:
    """The arguments a method of parameters ``names`` (each optional) gets, or None: -32602."""
    if isinstance(params, list):
        return [*params, *[None] * (len(names) - len(params))] if len(params) <= len(names) else None
    if isinstance(params, dict):
        return [params.get(n) for n in names] if set(params) <= set(names) else None
    return [None] * len(names)


# --- Safety: no valid mutating call ever reaches a VM of this host ---------------------------------


@dataclass
class Host:
    guest: str  # the session guest's UUID
    existing: frozenset[str]  # every domain of the host when the run began
    touched: set[str] = field(default_factory=set)  # VM ids mutating calls named
    redirected: int = 0  # valid mutating calls generated, and aimed away from the host's VMs


def _valid(parse: Any, value: Any) -> bool:
    try:
        parse(value)
        return True
    except ParamError:
        return False
    except Exception:  # a parser bug: the agent answers 16 (the oracle fails the case) and acts on nothing
        return False


def acts_on_host(method: Any, params: Any, host: Host) -> bool:
    """True when the call could change a VM of this host (a valid create of a VM id that is not
    here yet, or a valid destroy/plug/unplug of one that is)."""
    if not isinstance(method, str) or method not in MUTATING:
        return False
    if method == verbs.CREATE:
        if not isinstance(params, dict) or not _valid(VmSpec.from_params, params):
            return False
        return str(parse_vm_id(params.get("vmId"))) not in host.existing
    args = bind(params, ("vmId",) if method == verbs.DESTROY else ("vmId", "nic"))
    if args is None or not _valid(parse_vm_id, args[0]):
        return False
    vm_id = parse_vm_id(args[0])
    host.touched.add(vm_id)
    if vm_id not in host.existing:
        return False  # answered 1 (noVM)
    return method == verbs.DESTROY or _valid(TAKES_VM_AND_NIC[method].from_params, args[1])


def made_harmless(request: dict[str, Any], host: Host) -> dict[str, Any]:
    """The request, aimed away from the host's VMs if it could act on one."""
    method, params = request.get("method"), request.get("params", [])
    if not acts_on_host(method, params, host):
        return request
    host.redirected += 1
    vm_id = host.guest if method == verbs.CREATE else str(uuid.uuid4())  # create: "exists"; others: "no VM"
    params = [vm_id, *params[1:]] if isinstance(params, list) else {**params, "vmId": vm_id}
    return {**request, "params": params}


def harmless(body: bytes, host: Host) -> bool:
    """The bytes as the agent reads them hold no call that could act on the host."""
    try:
        request = strict_json(body)
    except ValueError:
        return True
    members = request if isinstance(request, list) else [request]
    return not any(isinstance(m, dict) and acts_on_host(m.get("method"), m.get("params", []), host) for m in members)


# --- Strategies ------------------------------------------------------------------------------------


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight (st.one_of folds repeated branches into one)."""
    # sampled_from picks evenly; st.integers(0, n) would favour 0 (Hypothesis seeks the edges).
    slots = [strategy for weight, strategy in options for _ in range(weight)]
    return st.sampled_from(slots).flatmap(lambda strategy: strategy)


def one_in(n: int) -> st.SearchStrategy[bool]:
    return st.sampled_from([False] * (n - 1) + [True])  # False first: what Hypothesis tries most


ODD_CHARS = ["\x00", "\x1b", "\n", "\udc00", "\ud800", "\ud83d", "\u2028", "\ufffe", "\uffff", "é", "😀", "'", '"']
ABSENT = object()  # a field left out


def _huge_string(char: str, size: int) -> str:
    width = len(json.dumps(char)) - 2  # bytes per character once written (escapes)
    return char * max(1, size // width)


huge_strings = st.builds(
    _huge_string,
    st.sampled_from(["x", "é", "\x00", "\udc00", "😀"]),
    st.sampled_from([60_000, MAX_REQUEST_BYTES - 2_000, MAX_REQUEST_BYTES + 50_000]),
)
huge_ints = st.sampled_from([20, 300, 4_299, 4_301, 20_000]).map(lambda n: Raw("-" * (n % 2) + "9" * n))
nesting = st.builds(
    lambda depth, leaf: Raw("[" * depth + leaf + "]" * depth),
    st.sampled_from([5, MAX_DEPTH - 8, MAX_DEPTH + 1, 970, 100_000]),
    st.sampled_from(["", "1", '"x"', "{}"]),
)
not_json = st.sampled_from([Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("-1e999")])
text = st.text(weighted((3, st.characters()), (1, st.sampled_from(ODD_CHARS))), max_size=24)
scalars = weighted(
    (1, st.none()),
    (1, st.booleans()),
    (2, st.integers()),
    (1, st.integers(min_value=2**63 - 2, max_value=2**64 + 2)),
    (1, st.floats(allow_nan=False, allow_infinity=False)),
    (3, text),
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=10,
)
# Any JSON value; now and then one the agent must refuse before reading it (NaN, 20,000 digits,
# nesting past the limit) or one of about a megabyte.
anything = weighted((40, junk), (1, huge_strings), (1, huge_ints), (1, nesting), (1, not_json))


def mostly(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value close to a valid one, else anything."""
    return weighted((4, plausible), (1, anything))


def vm_ids(guest: str) -> st.SearchStrategy[Any]:
    spellings = [guest, guest.upper(), "{" + guest + "}", "urn:uuid:" + guest, guest.replace("-", ""), f" {guest}"]
    return weighted((2, st.sampled_from(spellings)), (2, st.uuids().map(str)), (1, anything))


macs = weighted(
    (3, st.from_regex(r"[0-9a-f][02468ace](:[0-9a-f]{2}){5}", fullmatch=True)),
    (1, st.sampled_from(["01:00:5e:00:00:01", "zz", "00:1A:4A:16:01:51", "00:1a:4a:16:01:51\n"])),
)
pci = weighted(
    (
        3,
        st.fixed_dictionaries(
            {"slot": mostly(st.sampled_from(["0x0c", "0x1f", "0x20", 3, "-1"]))},
            optional={
                "type": st.sampled_from(["pci", "usb"]),
                "domain": st.just("0x0000"),
                "bus": anything,
                "function": st.sampled_from(["0x0", "0x8", 7]),
                "extra": anything,
            },
        ),
    ),
    (1, st.sampled_from(["0000:00:0c.0", "0000:00:0c.8", "zz"])),
)
bandwidth = st.fixed_dictionaries(
    {}, optional={k: mostly(st.integers(-1, 10**6)) for k in ("average", "peak", "burst")}
)
nics = weighted(
    (
        6,
        st.fixed_dictionaries(
            {
                "device": mostly(st.sampled_from(DEVICE_KINDS)),
                "macAddr": mostly(macs),
                "nicModel": mostly(st.sampled_from(list(NIC_MODELS))),
            },
            optional={
                "type": mostly(st.just("interface")),
                "network": mostly(st.sampled_from([BRIDGE, "default", "..", "x" * 16, "a b"])),
                "alias": mostly(st.from_regex(r"ua-[a-z0-9]{1,8}", fullmatch=True)),
                "id": anything,
                "address": mostly(pci),
                "bootOrder": mostly(st.integers(-2, 3)),
                "promisc": mostly(st.sampled_from([[BRIDGE], "a,b", [1], ""])),
                "specParams": mostly(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "inbound": mostly(bandwidth),
                            "outbound": mostly(bandwidth),
                            "vfAddress": mostly(pci),
                        },
                    )
                ),
                "linkActive": mostly(st.booleans()),
                "unknown": anything,
            },
        ),
    ),
    (1, anything),
)


def params_for(method: Any, guest: str) -> st.SearchStrategy[Any]:
    """Params for ``method``: named, positional, absent or anything; for a real verb, near its own."""
    vm = vm_ids(guest)
    if method == verbs.CREATE:
        named = st.fixed_dictionaries(
            {"vmId": vm},
            optional={
                "vmName": mostly(st.just("fuzz")),
                "memSize": mostly(st.sampled_from([128, 16, 15, 0, -1, 2**40])),
                "kernel": mostly(st.sampled_from(["vmlinuz", "../etc/passwd", "/boot/x", ""])),
                "initrd": anything,
                "kernelArgs": mostly(text),
                "nics": mostly(st.lists(nics, max_size=3)),
                "unknown": anything,
            },
        )
    elif method == verbs.DESTROY:
        named = st.fixed_dictionaries({"vmId": vm}, optional={"extra": anything})
    elif isinstance(method, str) and method in TAKES_VM_AND_NIC:
        named = st.fixed_dictionaries({"vmId": vm, "nic": nics}, optional={"extra": anything})
    elif method == verbs.VM_FULL_LIST:
        ids = st.lists(weighted((3, st.uuids().map(str)), (1, st.just(guest)), (1, anything)), max_size=5)
        named = st.fixed_dictionaries({}, optional={"vmList": weighted((4, ids), (1, st.none()), (1, anything))})
    else:
        named = weighted((3, st.just({})), (1, st.dictionaries(text, anything, max_size=2)))
    # Drop a key now and then: fixed_dictionaries' required ones are there only to make it likely.
    dropped = weighted((4, st.just(-1)), (1, st.sampled_from(range(10))))
    named = st.tuples(named, dropped).map(lambda t: {k: v for i, (k, v) in enumerate(t[0].items()) if i != t[1]})
    positional = named.map(lambda d: list(d.values()))
    return weighted((6, named), (2, positional), (1, st.just(ABSENT)), (1, anything))


method_names = weighted(
    (12, st.sampled_from(TABLE)),
    (
        2,
        st.sampled_from(TABLE).flatmap(
            lambda m: st.sampled_from(
                [
                    m.lower(),
                    m.upper(),
                    f" {m}",
                    f"{m} ",
                    f"{m}\x00",
                    m.split(".")[-1],
                    m[:-1],
                    f"VM.{m}",
                    m.replace(".", "/"),
                    f"rpc.{m}",
                ]
            )
        ),
    ),
    (1, text),
    (1, anything),
)


@st.composite
def requests(draw: st.DrawFn, host: Host) -> dict[str, Any]:
    method = draw(method_names)
    request: dict[str, Any] = {
        "jsonrpc": draw(
            weighted((12, st.just("2.0")), (1, st.sampled_from([ABSENT, "1.0", 2.0, "2.0 "])), (1, anything))
        ),
        "method": method,
        "params": draw(params_for(method, host.guest)),
        "id": draw(weighted((4, st.integers()), (2, text), (1, st.none()), (2, st.just(ABSENT)), (1, anything))),
    }
    if draw(one_in(30)):
        request[draw(st.sampled_from(["extra", "jsonRpc", "Method", "params "]))] = draw(anything)
    if draw(one_in(30)):
        del request[draw(st.sampled_from(["method", "jsonrpc"]))]
    request = {k: v for k, v in request.items() if v is not ABSENT}
    return made_harmless(request, host)


MALFORMED = [
    b"",
    b" ",
    b"{",
    b"[",
    b"]",
    b"null",
    b"1",
    b'"x"',
    b"true",
    b"{}",
    b"[[]]",
    b'{"jsonrpc": "2.0"',
    b'{"jsonrpc": "2.0", "method": "Host.ping", "id": 1}\n{}',
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xff\xfe",
    b"\xef\xbb\xbf" + json.dumps({"jsonrpc": "2.0", "method": "Host.ping", "id": 1}).encode(),
    json.dumps({"jsonrpc": "2.0", "method": "Host.ping", "id": 1}).encode("utf-16"),
]


@st.composite
def bodies(draw: st.DrawFn, host: Host) -> bytes:
    kind = draw(
        weighted(
            (12, st.just("single")),
            (4, st.just("batch")),
            (1, st.just("big batch")),
            (1, st.just("bytes")),
            (2, st.just("mutated")),
        )
    )
    ascii_only = not draw(one_in(5))
    if kind == "single":
        return encode(draw(requests(host)), ascii_only)
    if kind == "batch":
        members = st.lists(weighted((4, requests(host)), (1, anything)), max_size=8)
        return encode(draw(members), ascii_only)
    if kind == "big batch":  # a few members, repeated: cheap to generate at any size
        members = draw(st.lists(requests(host), min_size=1, max_size=3))
        size = draw(st.sampled_from([MAX_BATCH - 1, MAX_BATCH, MAX_BATCH + 1, 5_000]))
        widest = max(len(encode(m, ascii_only)) for m in members)
        size = min(size, max(1, 2 * MAX_REQUEST_BYTES // widest))  # at most twice the limit in all
        return encode([members[i % len(members)] for i in range(size)], ascii_only)
    if kind == "bytes":
        return draw(weighted((1, st.binary(max_size=64)), (2, st.sampled_from(MALFORMED))))
    body = bytearray(encode(draw(requests(host)), ascii_only))  # mutated: bytes changed at random places
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        change = draw(st.sampled_from(["cut", "insert", "delete", "flip"]))
        if change == "cut":
            del body[at:]
        elif change == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif change == "delete":
            del body[at : at + draw(st.integers(1, 8))]
        elif at < len(body):
            body[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(body)


@dataclass(frozen=True)
class Case:
    body: bytes
    http_method: str = "POST"
    content_type: str | None = "application/json"
    chunked: bool = False
    encoding: str | None = None  # the Content-Encoding header (a gzip body is compressed; others are not)

    def __repr__(self) -> str:  # a failing case is printed: a megabyte body is cut
        body = self.body if len(self.body) <= 2000 else self.body[:2000] + b"... (%d bytes)" % len(self.body)
        return f"Case({body!r}, {self.http_method!r}, {self.content_type!r}, {self.chunked}, {self.encoding!r})"


CONTENT_TYPES = [
    "application/json",
    "application/json-rpc",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=bogus",
    "application/json; charset=utf-16",
    "",
    "\u00e9/\u00e9",
    None,
]


@st.composite
def cases(draw: st.DrawFn, host: Host) -> Case:
    body = draw(bodies(host))
    assume(harmless(body, host))  # a random byte change that made a valid mutating call is never sent
    return Case(
        body,
        http_method=draw(st.sampled_from(["GET", "PUT", "DELETE", "PATCH"])) if draw(one_in(25)) else "POST",
        content_type=draw(weighted((6, st.just("application/json")), (3, st.sampled_from(CONTENT_TYPES)))),
        chunked=draw(one_in(10)),
        encoding=draw(st.sampled_from(["gzip", "br", "bogus", "identity"])) if draw(one_in(25)) else None,
    )


# --- The client: raw HTTP over the engine's mutual TLS ----------------------------------------------


class RawClient:
    """http.client over one kept-alive connection, opened again when the agent closed it."""

    def __init__(self, url: str, context: ssl.SSLContext):
        m = re.fullmatch(r"https://([^:/]+):(\d+)(/.*)", url)
        assert m is not None, url
        self.host, self.port, self.path = m.group(1), int(m.group(2)), m.group(3)
        self.context = context
        self.conn: http.client.HTTPSConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, case: Case) -> tuple[int, bytes, str]:
        headers = {} if case.content_type is None else {"Content-Type": case.content_type}
        body: bytes | Iterator[bytes] = case.body
        if case.encoding is not None:
            headers["Content-Encoding"] = case.encoding
            body = gzip.compress(case.body) if case.encoding == "gzip" else case.body
        for attempt in (1, 2):  # a kept-alive connection the agent has closed meanwhile: once more
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=120)
            try:
                payload = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if case.chunked else body
                self.conn.request(case.http_method, self.path, body=payload, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, data, resp.getheader("Content-Type", "")
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ping(self) -> None:
        ping = {"jsonrpc": "2.0", "method": verbs.PING, "id": "after"}
        status, data, _ = self.send(Case(json.dumps(ping).encode()))
        assert (status, json.loads(data)) == (200, {"jsonrpc": "2.0", "result": True, "id": "after"})
