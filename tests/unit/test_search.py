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
