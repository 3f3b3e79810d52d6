"""oVirt's search language, the part clients use to find things: ``?search=`` on collections.

    name=web-01            exact, case-insensitive, as in oVirt
    name=web*              '*' matches any run of characters
    status=up              any field a collection offers (see FIELDS in the repository)
    Clusters.name=prod     on data centers: one of its clusters is named so
    name=web* and status=up   terms joined by 'and'; '!=' negates; values may be "quoted"

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
MAX_LENGTH = 1000


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

    def fields(self) -> set[str]:
        return {t.field for t in self.terms}


def parse(text: str | None, *, collection: str, fields: tuple[str, ...]) -> Search:
    """``text`` as a Search over ``fields``; a 400 that says what is understood otherwise."""
    if not text or not text.strip():
        return Search()
    if len(text) > MAX_LENGTH:
        raise EngineError(errors.INVALID, f"a search is at most {MAX_LENGTH} characters")
    terms = []
    for part in _AND.split(text.strip()):
        match = _TERM.fullmatch(part)
        if match is None:
            raise EngineError(
                errors.INVALID,
                f"cannot read the search {text!r}: write field=value (or field!=value), '*' as a wildcard, "
                "terms joined by 'and'",
            )
        field = match.group(1).lower()
        if field not in fields:
            raise EngineError(
                errors.INVALID, f"{collection} can be searched by {', '.join(fields)}; not by {match.group(1)!r}"
            )
        value = match.group(4) if match.group(4) is not None else match.group(3)
        terms.append(Term(field, value, negated=match.group(2) == "!="))
    return Search(tuple(terms))
