"""oVirt's search language, the part clients use: parsed into terms, refused with a reason."""

from __future__ import annotations

import pytest

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.search import Term, parse

FIELDS = ("name", "status", "clusters.name")


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("name=web-01", (Term("name", "web-01"),)),
        ("NAME=Web*", (Term("name", "Web*"),)),
        ("name=web* and status=up", (Term("name", "web*"), Term("status", "up"))),
        ("name=web* AND status!=down", (Term("name", "web*"), Term("status", "down", negated=True))),
        ('name="two words"', (Term("name", "two words"),)),
        ("Clusters.name=prod", (Term("clusters.name", "prod"),)),
        ("", ()),
        ("   ", ()),
    ],
)
def test_searches_clients_send(text: str, terms: tuple[Term, ...]) -> None:
    assert parse(text, collection="VMs", fields=FIELDS).terms == terms


@pytest.mark.parametrize(
    ("text", "why"),
    [("os=linux", "searched by name, status, clusters.name; not by 'os'"), ("web-01", "field=value"),
     ("name=", "field=value"), ("name=a or name=b", "field=value"), ("x" * 1001, "at most 1000")],
)  # fmt: skip
def test_what_cannot_be_searched_is_a_400_that_says_why(text: str, why: str) -> None:
    with pytest.raises(EngineError) as refused:
        parse(text, collection="VMs", fields=FIELDS)
    assert refused.value.kind is errors.INVALID and why in refused.value.detail


@pytest.mark.parametrize(
    ("pattern", "like"),
    [("web*", "web%"), ("web", "web"), ("50%_off", "50\\%\\_off"), ("a\\b*", "a\\\\b%")],
)
def test_patterns_become_ilike_with_only_the_star_as_wildcard(pattern: str, like: str) -> None:
    assert Term("name", pattern).like() == like


@pytest.mark.parametrize(
    ("text", "max_results", "terms", "limit", "page"),
    [
        (None, "50", (), 50, 1),
        ("name=web* page 3", "20", (Term("name", "web*"),), 20, 3),
        ("page 2", None, (), 100, 2),  # a page without max: oVirt's 100
        ("name=web*", "-1", (Term("name", "web*"),), None, 1),  # -1: everything, as oVirt
        ("NAME=pageant", None, (Term("name", "pageant"),), None, 1),
    ],
)
def test_paging_as_ovirt_clients_ask(
    text: str | None, max_results: str | None, terms: tuple[Term, ...], limit: int | None, page: int
) -> None:
    found = parse(text, collection="VMs", fields=FIELDS, max_results=max_results)
    assert (found.terms, found.max, found.page) == (terms, limit, page)
    assert found.offset == (page - 1) * (limit or 0)


@pytest.mark.parametrize(("text", "max_results"), [(None, "0"), (None, "abc"), (None, "1000001"), ("page 0", "5")])
def test_a_page_or_max_that_makes_no_sense_is_refused(text: str | None, max_results: str) -> None:
    with pytest.raises(EngineError) as refused:
        parse(text, collection="VMs", fields=FIELDS, max_results=max_results)
    assert refused.value.kind is errors.INVALID
