"""Hypothesis throws junk at a real agent on the real host (issue 13): random methods (VDSM's
verbs mixed with junk), params of every JSON shape, batches of every size, malformed bytes, huge
strings, odd Content-Types and HTTP methods.  Every answer must be what JSON-RPC 2.0 says, the
agent must keep serving, and the session guest's live XML must not move by a byte.

What each case must get (the oracle, :func:`expected`, written from the specification and the
agent's documented limits rather than from the agent's code):

- not POST: 405; a compressed body (any Content-Encoding but identity): 415; a body over
  ``MAX_REQUEST_BYTES``: 413;
- otherwise HTTP 200 with a JSON-RPC answer, or 204 and nothing when only notifications came:
  not JSON (not UTF-8, NaN, a number out of range, nested deeper than ``MAX_DEPTH``): -32700;
  not a request object, an empty batch, a batch of more than ``MAX_BATCH``: -32600 (id null);
  an unknown method: -32601; a harmless read (``Host.*``) with good params: its result, with bad
  params -32602; a mutating verb: always an error (1, 4, 11, -32602), never code 16 or a server error.

The cases, and why none can act on a VM of this host: agent_fuzz_cases.py.

A normal run sends a few hundred cases; ``HOTPLUG_TORTURE=1`` (``make torture``) sends 2,500.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import ssl
import time
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from devtools import tls
from devtools.agent_proc import AgentClient, run_agent
from shared_schema import verbs
from tests.e2e.agent_fuzz_cases import (
    MAX_BATCH,
    MAX_REQUEST_BYTES,
    MUTATING,
    READS,
    TABLE,
    Case,
    Host,
    RawClient,
    bind,
    cases,
    strict_json,
)
from tests.e2e.conftest import Guest

TORTURE = os.environ.get("HOTPLUG_TORTURE") == "1"
CASES = 2500 if TORTURE else 500
MUTATING_CODES = frozenset({1, 4, 11, -32602})  # noVM, exist, MissParam, invalid params


# --- The oracle ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one request object must be answered."""

    id: Any
    codes: frozenset[int] = frozenset()  # the error codes allowed
    result: bool = False  # True: a result, no error


def _is_request(obj: Any) -> bool:
    """JSON-RPC 2.0's request object."""
    return (
        isinstance(obj, dict)
        and set(obj) <= {"jsonrpc", "method", "params", "id"}
        and obj.get("jsonrpc") == "2.0"
        and isinstance(obj.get("method"), str)
        and (not isinstance(obj.get("id"), bool) and isinstance(obj.get("id"), str | int | float | None))
        and isinstance(obj.get("params", []), list | dict)
    )


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
        return True
    except (TypeError, ValueError, AttributeError):
        return False


def _read_is_valid(method: str, params: Any) -> bool:
    args = bind(params, ("vmList",) if method == verbs.VM_FULL_LIST else ())
    if args is None:
        return False
    if method != verbs.VM_FULL_LIST or args[0] is None:
        return True
    return isinstance(args[0], list) and all(isinstance(v, str) and _is_uuid(v) for v in args[0])


def answer_to(obj: Any) -> Answer | None:
    """What one request object gets (None: a notification, answered with nothing)."""
    if not _is_request(obj):
        return Answer(None, frozenset({-32600}))
    if "id" not in obj:
        return None
    method, params, id_ = obj["method"], obj.get("params", []), obj["id"]
    if method in READS:
        ok = _read_is_valid(method, params)
        return Answer(id_, frozenset() if ok else frozenset({-32602}), result=ok)
    if method in MUTATING:
        return Answer(id_, MUTATING_CODES)
    return Answer(id_, frozenset({-32601}))


def expected(body: bytes) -> Answer | list[Answer] | None:
    """The JSON-RPC answer ``body`` must get: one, a batch of them, or None (nothing: 204)."""
    try:
        request = strict_json(body)
    except ValueError:
        return Answer(None, frozenset({-32700}))
    if isinstance(request, list) and (not request or len(request) > MAX_BATCH):
        return Answer(None, frozenset({-32600}))
    if isinstance(request, list):
        answers = [a for a in map(answer_to, request) if a is not None]
        return answers or None
    return answer_to(request)


def check_answer(got: Any, want: Answer) -> None:
    assert isinstance(got, dict) and got.get("jsonrpc") == "2.0", got
    assert "id" in got and got["id"] == want.id, (got, want)
    if want.result:
        assert set(got) == {"jsonrpc", "id", "result"}, got
        return
    assert set(got) == {"jsonrpc", "id", "error"}, got
    error = got["error"]
    assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), got
    assert error["code"] in want.codes, (got, want)


def request_method(body: bytes) -> Any:
    with contextlib.suppress(ValueError):
        request = strict_json(body)
        return request.get("method") if isinstance(request, dict) else None
    return None


def check(case: Case, status: int, data: bytes, content_type: str) -> str:
    """Assert the agent's answer to ``case``; returns a word for the tally."""
    size = len(case.body)
    if case.http_method != "POST":
        assert status == 405, (status, data[:300])
        return "405"
    if case.encoding not in (None, "identity"):
        assert status == 415, (status, data[:300])
        return "415"
    if size > MAX_REQUEST_BYTES:
        assert status == 413, (status, data[:300])
        return "413"
    want = expected(case.body)
    if want is None:
        assert (status, data) == (204, b""), (status, data[:300])
        return "204"
    assert status == 200 and content_type.startswith("application/json"), (status, content_type, data[:300])
    got = strict_json(data)  # also: the answer itself is JSON any parser reads
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (got, want)
        for g, w in zip(got, want, strict=True):  # the agent answers a batch in order
            check_answer(g, w)
        return "batch"
    check_answer(got, want)
    verb = request_method(case.body)
    return f"{verb} " * (verb in TABLE) + ("result" if want.result else str(got["error"]["code"]))


def fuzz(client: RawClient, host: Host, examples: int) -> Counter[str]:
    """Send ``examples`` generated cases; after each, the agent still answers a ping."""
    tally: Counter[str] = Counter()

    @settings(
        max_examples=examples,
        print_blob=True,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no explain: too slow on MB bodies
        deadline=None,
        database=None,
        derandomize=not TORTURE,  # the same cases in every normal run; new ones under torture
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
    @given(case=cases(host))
    def one(case: Case) -> None:
        status, data, content_type = client.send(case)
        tally[check(case, status, data, content_type)] += 1
        tally["cases"] += 1
        client.ping()

    one()
    return tally


# --- The tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fuzzed_agent(output_dir: Path) -> AsyncIterator[AgentClient]:
    """An agent of its own: what it does to memory is measured without the other tests' calls."""
    async with run_agent(output_dir / "e2e") as client:
        yield client


def _rss_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field_name} for {pid}")


def _domains(conn: libvirt.virConnect) -> frozenset[str]:
    return frozenset(d.UUIDString() for d in conn.listAllDomains())


async def test_junk_always_gets_a_json_rpc_error_and_leaves_the_guest_alone(
    fuzzed_agent: AgentClient, test_guest: Guest, output_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = test_guest.domain.XMLDesc(0)
    host = Host(test_guest.uuid, _domains(test_guest.conn))
    client = RawClient(fuzzed_agent.url, tls.ensure().client_context())
    started = time.monotonic()
    try:
        tally = await asyncio.to_thread(fuzz, client, host, CASES)
    finally:
        client.close()
    seconds = round(time.monotonic() - started, 1)
    totals = {"torture": TORTURE, "cases": tally.pop("cases"), "seconds": seconds, "answers": dict(tally.most_common()),
              "valid mutating calls redirected": host.redirected}  # fmt: skip
    (output_dir / "e2e" / "agent-fuzz.json").write_text(json.dumps(totals, indent=2) + "\n")
    with capsys.disabled():
        print(f"\nagent fuzz{' (torture)' if TORTURE else ''}: {totals['cases']} cases in {seconds} s")
    assert totals["cases"] >= CASES
    assert fuzzed_agent.process.returncode is None
    assert await fuzzed_agent.ok(verbs.PING) is True
    assert test_guest.domain.XMLDesc(0) == before  # not a byte moved
    created = (_domains(test_guest.conn) - host.existing) & host.touched
    assert not created, f"the fuzzer's VM ids run here: {created}"
    assert "Traceback" not in fuzzed_agent.log.read_text(errors="replace").split("serving JSON-RPC")[-1]
    top = list(totals["answers"].items())[:6]
    answers = ", ".join(f"{kind} {n}" for kind, n in top) + f", and {len(totals['answers']) - len(top)} more kinds"
    row = {"what": "agent JSON-RPC fuzzing (hypothesis: methods, params, nesting, batches, huge strings, bad JSON)",
           "injected": totals["cases"], "left": 0, "converge": "",
           "note": f"answers: {answers}; the guest's live XML byte-identical; the agent kept serving; "
                   f"{host.redirected} valid mutating calls aimed at VMs that do not exist"}  # fmt: skip
    folder = output_dir / "reliability"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent_fuzz.json").write_text(json.dumps({"suite": "agent_fuzz", "torture": TORTURE, "rows": [row]}))


def _streamed(url: str, context: ssl.SSLContext, size: int, chunked: bool) -> int | None:
    """POST ``size`` bytes of JSON-looking junk without holding them: the status, or None when the
    agent closed the connection before the body was sent."""
    client = RawClient(url, context)
    conn = http.client.HTTPSConnection(client.host, client.port, context=context, timeout=60)
    block = b'{"jsonrpc": "2.0", "method": "' + b"x" * 65_000
    blocks = (block for _ in range(size // len(block)))
    headers = {"Content-Type": "application/json"}
    if not chunked:
        headers["Content-Length"] = str(size // len(block) * len(block))
    try:
        conn.request("POST", client.path, body=blocks, headers=headers, encode_chunked=chunked)
        return conn.getresponse().status
    except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, http.client.RemoteDisconnected):
        return None
    finally:
        conn.close()


BODY = 64 << 20  # bytes of each oversized body


def _gzip_bomb(size: int) -> bytes:
    """``size`` bytes of zeros, gzipped (about a thousandth of it)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    return b"".join([*(packer.compress(zeros) for _ in range(size >> 20)), packer.flush()])


async def test_a_body_over_the_limit_is_refused_without_the_agent_growing(
    fuzzed_agent: AgentClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bodies of 64 MiB (sized or chunked, four at once, twice) refused with 413 (or the connection
    closed under them), gzip bombs of 256 MiB refused unread with 415.  The agent's peak memory
    grows by less than one body for all of them: nothing is held beyond MAX_REQUEST_BYTES per
    request.  (It does grow some: the allocator keeps freed megabytes for a while; measured, it
    levels off some 60 MiB up after a few hundred such bodies, and gives it back under
    MALLOC_MMAP_THRESHOLD_.)"""
    pid = fuzzed_agent.process.pid
    context = tls.ensure().client_context()

    async def four_bodies() -> None:
        sending = (asyncio.to_thread(_streamed, fuzzed_agent.url, context, BODY, chunked) for chunked in (0, 1, 0, 1))
        statuses = await asyncio.gather(*sending)
        assert all(s in (413, None) for s in statuses), statuses
        assert 413 in statuses, statuses  # the agent says why, at least when it reads in time

    start = _rss_kib(pid, "VmHWM")
    await four_bodies()
    await four_bodies()
    bomb = _gzip_bomb(256 << 20)
    client = RawClient(fuzzed_agent.url, context)
    try:
        for _ in range(3):
            status, data, _ = await asyncio.to_thread(client.send, Case(bomb, encoding="x-gzip"))
            assert status == 415, data[:200]
    finally:
        client.close()
    grown = _rss_kib(pid, "VmHWM") - start
    with capsys.disabled():
        print(f"\nagent peak memory {start} KiB, {grown} KiB more after 8 bodies of {BODY >> 20} MiB and 3 bombs")
    assert grown < BODY // 1024, f"peak memory grew by {grown} KiB"
    assert await fuzzed_agent.ok(verbs.PING) is True
    assert fuzzed_agent.process.returncode is None
