"""Bad input to the agent's JSON-RPC face, each case a bug found fuzzing the agent
(tests/e2e/test_agent_fuzz.py, and probes around it): the answer is always a JSON-RPC error in
valid JSON with the code the specification gives (parse error -32700, invalid request -32600,
invalid params -32602), or a clean 4xx for a body HTTP cannot deliver; never a server error.

The agent here is the real aiohttp application on the simulated hypervisor, on loopback."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.http_exceptions import TransferEncodingError
from aiohttp.streams import StreamReader
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from shared_schema import verbs
from shared_schema.errors import INVALID_PARAMETER
from vdsm_agent.settings import AgentSettings

with warnings.catch_warnings():  # jsonrpcserver 5.0.9 reads its schema with a deprecated importlib call
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonrpcserver import Result, Success

    from vdsm_agent import app, envelope, rpc
    from vdsm_agent.app import MAX_REQUEST_BYTES, create_app

PARSE_ERROR, INVALID_REQUEST = -32700, -32600
PING = {"jsonrpc": "2.0", "method": verbs.PING, "id": 1}


def strict_json(text: bytes | str) -> Any:
    """What any JSON parser reads: no NaN or Infinity (Python's json.loads alone accepts them)."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"the answer holds {name}, which is not JSON: {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    settings = AgentSettings(hypervisor="simulated", mirror_sync_interval=60, images_dir=str(tmp_path),
                             log_dir=str(tmp_path))  # fmt: skip
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        yield client


async def post(http: TestClient[Any, Any], body: bytes, content_type: str = "application/json") -> Any:
    async with http.post("/jsonrpc", data=body, headers={"Content-Type": content_type}) as resp:
        assert resp.status == 200, await resp.text()
        return strict_json(await resp.read())


def code(answer: dict[str, Any]) -> int:
    assert "error" in answer, answer
    return int(answer["error"]["code"])


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
async def test_a_number_json_cannot_carry_is_a_parse_error_not_echoed(http: TestClient[Any, Any], value: bytes) -> None:
    """Was: the ping answered with "id": NaN (or Infinity), which no JSON parser reads."""
    answer = await post(http, b'{"jsonrpc": "2.0", "method": "Host.ping", "id": ' + value + b"}")
    assert code(answer) == PARSE_ERROR and answer["id"] is None


async def test_a_body_that_is_not_utf8_is_a_parse_error(http: TestClient[Any, Any]) -> None:
    """Was: HTTP 500 "Server got itself in trouble" (the body's bytes did not decode)."""
    answer = await post(http, b'{"jsonrpc": "2.0", "method": "Host.ping\xff", "id": 1}')
    assert code(answer) == PARSE_ERROR


@pytest.mark.parametrize("charset", ["bogus", "utf-16", "latin-1"])
async def test_the_body_is_utf8_whatever_charset_the_content_type_names(
    http: TestClient[Any, Any], charset: str
) -> None:
    """Was: HTTP 500 for an unknown charset or one the body is not in (JSON is UTF-8: RFC 8259)."""
    body = json.dumps({**PING, "params": {}, "id": "é"}, ensure_ascii=False).encode()
    answer = await post(http, body, f"application/json; charset={charset}")
    assert answer == {"jsonrpc": "2.0", "result": True, "id": "é"}


async def rpc_ping() -> Result:
    return Success(True)


async def test_a_batch_is_answered_member_by_member() -> None:
    """Was: one -32600 for the whole batch when any member was invalid, so the valid calls beside
    it never ran; the specification answers each member ([1, 2] gets two errors)."""
    table: dict[str, Any] = {verbs.PING: rpc_ping}
    answer = strict_json(await envelope.answer(json.dumps([PING, 7, {"jsonrpc": "2.0"}, [PING]]), table))
    assert answer[0] == {"jsonrpc": "2.0", "result": True, "id": 1}
    assert [code(a) for a in answer[1:]] == [INVALID_REQUEST] * 3
    assert [a["id"] for a in answer[1:]] == [None] * 3
    answer = strict_json(await envelope.answer("[1, 2]", table))
    assert [code(a) for a in answer] == [INVALID_REQUEST, INVALID_REQUEST]


@pytest.mark.parametrize("body", ["[]", json.dumps([PING] * (envelope.MAX_BATCH + 1))])
async def test_an_empty_or_oversized_batch_is_one_invalid_request(body: str) -> None:
    answer = strict_json(await envelope.answer(body, {verbs.PING: rpc_ping}))
    assert isinstance(answer, dict) and code(answer) == INVALID_REQUEST


async def test_a_batch_of_notifications_gets_no_answer() -> None:
    notification = {"jsonrpc": "2.0", "method": verbs.PING}
    assert await envelope.answer(json.dumps([notification, notification]), {verbs.PING: rpc_ping}) == ""


@pytest.mark.parametrize("depth", [envelope.MAX_DEPTH + 1, 975, 5000])
async def test_deep_nesting_is_a_parse_error_at_any_depth_past_the_limit(depth: int) -> None:
    """Was: a valid request whose params nested ~975 levels answered -32600 "invalid request" (the
    schema validator ran out of stack), at ~980 -32700, depending on how deep the caller's stack was."""
    text = '{"jsonrpc": "2.0", "method": "Host.getVMFullList", "id": 1, "params": {"vmList": %s}}' % (
        "[" * depth + "]" * depth
    )
    answer = strict_json(await envelope.answer(text, {}))
    assert code(answer) == PARSE_ERROR and f"deeper than {envelope.MAX_DEPTH}" in answer["error"]["data"]


async def test_a_huge_parameter_is_not_echoed_whole_into_the_answer_or_the_log(
    http: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Was: a 900 kB vmId came back whole in the error message and was logged whole, per call."""
    junk = "x" * 900_000
    caplog.set_level(logging.INFO, logger="vdsm_agent")
    answer = await post(http, json.dumps({**PING, "method": verbs.DESTROY, "params": {"vmId": junk}}).encode())
    assert code(answer) == INVALID_PARAMETER.code
    message = answer["error"]["message"]
    assert message.startswith("Invalid parameter: vmId: expected a UUID, got 'xxx")
    assert len(message) < rpc.MAX_MESSAGE + 100 and "more characters" in message
    assert max(len(r.getMessage()) for r in caplog.records) < rpc.MAX_MESSAGE + 100


@pytest.mark.parametrize("args", ["\x00", "quiet\x1b[2J", "a\nb", "\udc00", "\ufffe"])
async def test_kernel_args_xml_cannot_carry_are_invalid_params(http: TestClient[Any, Any], args: str) -> None:
    """Was: code 16 "Unexpected exception" and a traceback in the log (lxml refused the string
    while building the domain XML); a caller's mistake is -32602 naming the parameter."""
    params = {"vmId": str(uuid.uuid4()), "vmName": "junk-args", "kernel": "vmlinuz", "kernelArgs": args}
    answer = await post(http, json.dumps({**PING, "method": verbs.CREATE, "params": params}).encode())
    assert code(answer) == INVALID_PARAMETER.code and "kernelArgs" in answer["error"]["message"]
    ok = {**params, "vmId": str(uuid.uuid4()), "kernelArgs": "console=ttyS0 quiet é"}
    answer = await post(http, json.dumps({**PING, "method": verbs.CREATE, "params": ok}).encode())
    assert answer["result"]["status"] == "Up"


@pytest.mark.parametrize(
    "body", [b"not gzip at all", gzip.compress(json.dumps(PING).encode(), mtime=0)], ids=["junk", "gzip"]
)
async def test_a_compressed_body_is_refused_unread_with_415(http: TestClient[Any, Any], body: bytes) -> None:
    """Was: HTTP 500 for a body that claimed gzip and was not (aiohttp inflated it in read()); a
    gzip bomb was inflated too (up to the size limit).  The engine never compresses: 415."""
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with http.post("/jsonrpc", data=body, headers=headers) as resp:
        assert resp.status == 415 and resp.headers["Accept-Encoding"] == "identity"
    headers["Content-Encoding"] = "identity"
    async with http.post("/jsonrpc", data=json.dumps(PING).encode(), headers=headers) as resp:
        assert strict_json(await resp.read()) == {"jsonrpc": "2.0", "result": True, "id": 1}


def broken_body() -> StreamReader:
    """A request body whose chunked framing broke off: what aiohttp's parser leaves for read()."""
    payload = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    payload.set_exception(TransferEncodingError("Not enough data to satisfy transfer length header."))
    return payload


async def test_a_chunked_body_that_breaks_off_is_a_400_not_a_500() -> None:
    """Was: HTTP 500 "Server got itself in trouble" (TransferEncodingError out of read())."""
    request = make_mocked_request("POST", "/jsonrpc", headers={"Content-Type": "application/json"},
                                  payload=broken_body())  # fmt: skip
    with pytest.raises(web.HTTPBadRequest):
        await app.jsonrpc(request)


async def test_a_body_whose_length_is_over_the_limit_is_refused_unread() -> None:
    """Was: read up to the limit first (in megabyte pieces, then the rest discarded the same way)."""
    headers = {"Content-Type": "application/json", "Content-Length": str(64 << 20)}
    request = make_mocked_request("POST", "/jsonrpc", headers=headers, payload=broken_body())  # reading it fails
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await app.jsonrpc(request)


async def test_a_body_over_the_limit_is_refused_with_413(http: TestClient[Any, Any]) -> None:
    body = b'{"jsonrpc": "2.0", "method": "Host.ping", "id": 1, "params": {"x": "' + b"a" * MAX_REQUEST_BYTES + b'"}}'
    async with http.post("/jsonrpc", data=body, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413
    assert await post(http, json.dumps(PING).encode()) == {"jsonrpc": "2.0", "result": True, "id": 1}
