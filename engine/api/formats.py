"""The API's two wire formats, as oVirt speaks them: XML (the default) and JSON.

One representation per resource (``representation.py`` builds it as JSON-shaped data); two small
writers and two small readers here; handlers never branch on the format.

- **Answers** are XML unless the client asks for JSON (``Accept: application/json``), as oVirt
  does.  In XML a collection is its plural tag (``<vms><vm id=… href=…>…``), ``id``, ``href``
  and a link's ``rel`` are attributes, a list is its repeated element, booleans are
  ``true``/``false``.
- **Request bodies** are read by ``Content-Type``: XML (``application/xml``, ``text/xml``) or
  JSON; without one, by their first character.  XML is parsed with entity resolution, DTDs
  and network access off, a size limit, and no DOCTYPE at all: a bad document is a 400 fault.
  JSON's NaN and Infinity are refused, and so is JSON nested too deeply to read.
- **Text** in a body, the path or the query must be text PostgreSQL can store: no NUL, no lone
  surrogate (``engine/domain/limits.py``).  Checked here, once, for everything a request
  carries, so no use case can pass such text on to the database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from lxml import etree

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.limits import refuse_text

Json = dict[str, Any]
MAX_BODY = 1024 * 1024  # bytes; oVirt's own requests are a few kilobytes
XML = "application/xml"
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Characters XML 1.0 cannot carry (control characters but tab, newline, carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Reply:
    """What a handler answers: the root element's name (for XML), the body, the status."""

    root: str
    body: Json
    status: int = 200


def wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return "json" in accept and "xml" not in accept.split("json")[0]


def render(request: web.Request, reply: Reply) -> web.Response:
    if wants_json(request):
        return web.json_response(reply.body, status=reply.status)
    return web.Response(body=to_xml(reply.root, reply.body), status=reply.status, content_type=XML, charset="utf-8")


# -- the XML writer ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return _NOT_XML.sub("\ufffd", text)


def _element(tag: str, value: Any) -> etree._Element:
    element = etree.Element(tag if _XML_NAME.fullmatch(tag) else "entry")
    if not _XML_NAME.fullmatch(tag):
        element.set("key", _text(tag))
    if not isinstance(value, dict):
        element.text = _text(value)
        return element
    for key, item in value.items():
        if item is None:
            continue
        scalar = not isinstance(item, (dict, list))
        if scalar and (key in ("id", "href") or (tag == "link" and key == "rel")):
            element.set(key, _text(item))
        elif isinstance(item, list):
            element.extend(_element(key, x) for x in item)
        else:
            element.append(_element(key, item))
    return element


def to_xml(root: str, body: Json) -> bytes:
    document: bytes = etree.tostring(_element(root, body), xml_declaration=True, encoding="UTF-8")
    return document


# -- the readers --------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )  # fmt: skip


def _is_list_item(parent: str, tag: str) -> bool:
    """oVirt wraps lists in their plural (``<hosts><host/></hosts>``); links stand in line."""
    return tag == "link" or parent in (tag + "s", tag[:-1] + "ies")


class XmlText(str):
    """An element's text.  An element with nothing in it (``<custom_properties/>``) may be empty
    text or an empty object: only the reader of the field knows (``representation._get``)."""


def _from_element(element: etree._Element) -> Any:
    children = [c for c in element if isinstance(c.tag, str)]
    if not children and not element.attrib:
        return XmlText(element.text or "")
    value: Json = {str(k): str(v) for k, v in element.attrib.items()}
    for child in children:
        key, item = str(child.tag), _from_element(child)
        if _is_list_item(str(element.tag), key):
            value.setdefault(key, []).append(item)
        elif key in value:
            raise EngineError(errors.INVALID, f"<{key[:40]}> is given twice in <{str(element.tag)[:40]}>")
        else:
            value[key] = item
    return value


def refuse_bad_text(body: Any) -> None:
    """Every text of a body, its field names included, must be text PostgreSQL can store
    (iteratively: a body may nest deeply)."""
    stack: list[tuple[Any, str]] = [(body, "the body")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            refusal = refuse_text(where, value)
        elif isinstance(value, dict):
            refusal = next(filter(None, (refuse_text(f"a field name in {where}", k) for k in value)), None)
            stack.extend((item, key if where == "the body" else f"{where}.{key}") for key, item in value.items())
        else:
            refusal = None
            if isinstance(value, list):
                stack.extend((item, where) for item in value)
        if refusal is not None:
            raise refusal


def refuse_bad_text_in_request(request: web.Request) -> None:
    """The path and the query (their ids and search terms reach the database and its audit log)."""
    refuse_bad_text({"path": request.path, "query": dict(request.query)})


def from_xml(data: bytes) -> Json:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise EngineError(errors.INVALID, f"the body is not a well-formed XML document: {exc}") from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise EngineError(errors.INVALID, "XML documents with a DOCTYPE are not accepted")
    body = _from_element(root)
    return body if isinstance(body, dict) else {}


def _no_constant(name: str) -> Any:
    raise EngineError(errors.INVALID, f"the body is not valid JSON: {name} is not a number JSON has")


def from_json(data: bytes) -> Json:
    try:
        body = json.loads(data, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise EngineError(errors.INVALID, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise EngineError(errors.INVALID, "the body is not JSON that can be read: it nests too deeply") from None
    if not isinstance(body, dict):
        raise EngineError(errors.INVALID, "the body must be a JSON object")
    return body


async def read_body(request: web.Request) -> Json:
    """The request's body as JSON-shaped data, whichever format it came in; {} when empty.  Its
    text is text PostgreSQL can store (a 400 otherwise)."""
    if not request.can_read_body:
        return {}
    data = await request.read()  # the application's client_max_size (MAX_BODY) bounds it: 413
    if not data.strip():
        return {}
    kind = request.content_type.lower()
    xml = "xml" in kind or (not kind.endswith("json") and data.lstrip()[:1] == b"<")
    body = from_xml(data) if xml else from_json(data)
    refuse_bad_text(body)
    return body
