"""oVirt's search language, the part clients use to find things: ``?search=`` on collections.

    name=web-01            exact, case-insensitive, as in oVirt
    name=web*              '*' matches any run of characters
    status=up              any field a collection offers (see FIELDS in the repository)
    Clusters.name=prod     on data centers: one of its clusters is named so
    name=web* and status=up   terms joined by 'and'; '!=' negates; values may be "quoted"
    name=web* page 2       oVirt's paging: the second page of ``max`` results (``?max=``,
                           PAGE_SIZE when none is given); lists are ordered by name

A search is parsed here into :class:`Search` (pure; no SQL); the repository turns it into a
WHERE clause for the fields each collection declares, and refuses others with a clear 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.domain import errors
from engine.domain.errors import EngineError

_TERM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(!=|=)\s*("([^"]*)"|[^\s"]+)\s*')
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_PAGE = re.compile(r"(?:^|\s+)page\s+([0-9]{1,9})\s*$", re.IGNORECASE)
MAX_LENGTH = 1000
PAGE_SIZE = 100  # results of one page when a search names a page but the request gives no max
MAX_RESULTS = 100_000  # the largest max= taken


@dataclass(frozen=True)
class Term:
    field: str  # lower case: 'name', 'status', 'clusters.name'
    pattern: str  # the value with '*' for any run of characters
    negated: bool = False

    def like(self) -> str:
        """The pattern for SQL ILIKE: '*' becomes '%', and LIKE's own wildcards are escaped."""
        escaped = self.pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return escaped.replace("*", "%")


@dataclass(frozen=True)
class Search:
    terms: tuple[Term, ...] = ()
    max: int | None = None  # at most this many results (None: all)
    page: int = 1  # which run of ``max`` results

    @property
    def offset(self) -> int:
        return (self.page - 1) * (self.max or 0)

    def fields(self) -> set[str]:
        return {t.field for t in self.terms}


def parse(text: str | None, *, collection: str, fields: tuple[str, ...], max_results: str | None = None) -> Search:
    """``text`` (and the request's ``max``) as a Search over ``fields``; a 400 that says what is
    understood otherwise."""
    limit = _max(max_results)
    text = (text or "").strip()
    if len(text) > MAX_LENGTH:
        raise EngineError(errors.INVALID, f"a search is at most {MAX_LENGTH} characters")
    page = 1
    if paged := _PAGE.search(text):
        page, text = int(paged.group(1)), text[: paged.start()].strip()
        if page < 1:
            raise EngineError(errors.INVALID, "pages are numbered from 1")
        limit = limit or PAGE_SIZE
    if not text:
        return Search((), limit, page)
    terms = []
    for part in _AND.split(text):
        match = _TERM.fullmatch(part)
        if match is None:
            raise EngineError(
                errors.INVALID,
                f"cannot read the search {text!r}: write field=value (or field!=value), '*' as a wildcard, "
                "terms joined by 'and', perhaps ending in 'page N'",
            )
        field = match.group(1).lower()
        if field not in fields:
            raise EngineError(
                errors.INVALID, f"{collection} can be searched by {', '.join(fields)}; not by {match.group(1)!r}"
            )
        value = match.group(4) if match.group(4) is not None else match.group(3)
        terms.append(Term(field, value, negated=match.group(2) == "!="))
    return Search(tuple(terms), limit, page)


def _max(value: str | None) -> int | None:
    """oVirt's ``max`` query parameter: a whole number; -1 (as oVirt) or none means all."""
    if value is None or value.strip() == "-1":
        return None
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_RESULTS:
        raise EngineError(errors.INVALID, f"max must be a whole number from 1 to {MAX_RESULTS} (or -1 for all)")
    return int(value)
