"""Hypothesis strategies over the requests a client can send to the list endpoint.

Each strategy is named for what it generates. :func:`queries` combines them into a
:class:`Query`: the raw parameter values as sent, whether the contract calls them valid, and
the query string. Valid bounds come from :mod:`conformance.inputs`, statuses from the job
schema. Strategies are ordered so that shrinking ends at the plainest request that still
fails: a parameter left out before one given, a valid value before an invalid one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from conformance import inputs, schemas
from conformance.inputs import FAR_OFFSET, LIMIT_DEFAULT, LIMIT_MAX, LIMIT_MIN

_STRICT_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_TEXT = st.characters(exclude_categories=_SURROGATES)  # lone surrogates cannot be sent as UTF-8


KNOWN_PARAMETERS = ("status", "limit", "offset")
# The chosen probe values of conformance.inputs come first; the extras widen them. Non-integers
# leave out what a lenient parser reads as an integer ("1.0", " 5", "1e2", "٣").
NON_INTEGERS = tuple(dict.fromkeys(
    [value for value in inputs.INVALID_LIMITS + inputs.INVALID_OFFSETS if not _STRICT_INTEGER.fullmatch(value)]
    + ["-1.5", "ten", "5x", "0x10", "1,5", "null", "[1]", "∞", "1/2"]))
OUT_OF_RANGE_LIMITS = tuple(int(value) for value in inputs.INVALID_LIMITS if _STRICT_INTEGER.fullmatch(value))
OUTSIDE_STATUSES = tuple(dict.fromkeys(inputs.OUTSIDE_STATUSES + (
    "unknown", "done", "pending", "completed", "canceled", "error", "all", "*", " ", " queued", "queued\x00", "%")))
UNKNOWN_PARAMETER_NAMES = tuple(name for name, _ in inputs.UNKNOWN_PARAMETERS) + ("include", "expand", "fields", "x")


@dataclass(frozen=True)
class Query:
    """One request's query: each parameter's raw value as sent, or None when left out."""

    status: str | None = None
    limit: str | None = None
    offset: str | None = None
    unknown: tuple[tuple[str, str], ...] = ()

    @property
    def limit_valid(self) -> bool:
        value = strict_integer(self.limit)
        return self.limit is None or (value is not None and LIMIT_MIN <= value <= LIMIT_MAX)

    @property
    def offset_valid(self) -> bool:
        value = strict_integer(self.offset)
        return self.offset is None or (value is not None and value >= 0)

    @property
    def status_valid(self) -> bool:
        return self.status is None or self.status in schemas.statuses()

    @property
    def valid(self) -> bool:
        """The contract accepts it (unknown parameters aside, which it SHOULD ignore)."""
        return self.limit_valid and self.offset_valid and self.status_valid

    @property
    def applied_limit(self) -> int:
        """The page size a valid query asks for (the default when ``limit`` is left out)."""
        return LIMIT_DEFAULT if self.limit is None else int(self.limit)

    @property
    def applied_offset(self) -> int:
        return 0 if self.offset is None else int(self.offset)

    def params(self) -> list[tuple[str, str]]:
        """The parameters in the order they are sent: status, limit, offset, then unknown ones."""
        given = [(name, getattr(self, name)) for name in KNOWN_PARAMETERS]
        return [(name, value) for name, value in given if value is not None] + list(self.unknown)

    def render(self) -> str:
        """The query string, percent-encoded (``status=queued&limit=1``)."""
        return urlencode(self.params())


def weighted(*choices: tuple[int, SearchStrategy[Any]]) -> SearchStrategy[Any]:
    """One of the strategies, picked in proportion to its weight; shrinks towards the first."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def strict_integer(text: str | None) -> int | None:
    """The integer a canonical decimal (``-?[0-9]+``, no leading zeros) writes, else None."""
    return int(text) if text is not None and _STRICT_INTEGER.fullmatch(text) else None


def reads_as_integer(text: str) -> bool:
    """True when Python's lenient ``int()`` or ``float()`` reads ``text`` as a whole number."""
    try:
        int(text)
        return True
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return False
    return math.isfinite(number) and number.is_integer()


def non_integers() -> SearchStrategy[str]:
    """Texts that are not integers by any reading: chosen ones first, then generated ones."""
    generated = st.text(_TEXT, max_size=8).filter(lambda text: not reads_as_integer(text))
    return st.one_of(st.sampled_from(NON_INTEGERS), generated)


def valid_limits() -> SearchStrategy[int]:
    """Page sizes the contract accepts, 1-100, with extra weight on 1, 2, 99 and 100."""
    edges = (LIMIT_MIN, LIMIT_MIN + 1, LIMIT_MAX - 1, LIMIT_MAX)
    return st.one_of(st.integers(LIMIT_MIN, LIMIT_MAX), st.sampled_from(edges))


def out_of_range_limits() -> SearchStrategy[int]:
    """Integers outside 1-100: the chosen ones (0, 101, -1, 1000) first, then any below or above."""
    return st.one_of(st.sampled_from(OUT_OF_RANGE_LIMITS), st.integers(max_value=LIMIT_MIN - 1),
                     st.integers(min_value=LIMIT_MAX + 1))


def invalid_limits() -> SearchStrategy[str]:
    """``limit`` values the contract refuses: out of range, or not integers."""
    return st.one_of(out_of_range_limits().map(str), non_integers())


def limits() -> SearchStrategy[str | None]:
    """The ``limit`` parameter: left out (1 in 5), valid (3 in 5) or invalid (1 in 5)."""
    return weighted((1, st.none()), (3, valid_limits().map(str)), (1, invalid_limits()))


def valid_offsets(listing_size: int) -> SearchStrategy[int]:
    """Offsets from 0 to past the end, with extra weight on 0, the last job, the end and end+1."""
    edges = sorted({0, max(listing_size - 1, 0), listing_size, listing_size + 1})
    return st.one_of(st.integers(0, listing_size + 1), st.sampled_from(edges),
                     st.integers(min_value=listing_size + 2, max_value=FAR_OFFSET))


def invalid_offsets() -> SearchStrategy[str]:
    """``offset`` values the contract refuses: negative, or not integers."""
    return st.one_of(st.integers(max_value=-1).map(str), non_integers())


def offsets(listing_size: int) -> SearchStrategy[str | None]:
    """The ``offset`` parameter for a listing of ``listing_size`` jobs: left out (1 in 5), valid
    (3 in 5) or invalid (1 in 5)."""
    return weighted((1, st.none()), (3, valid_offsets(listing_size).map(str)), (1, invalid_offsets()))


def valid_statuses() -> SearchStrategy[str]:
    """The six statuses of the job schema."""
    return st.sampled_from(schemas.statuses())


def wrong_case_statuses() -> SearchStrategy[str]:
    """A status in other letter case: ``QUEUED``, ``Queued``, ``qUEUED``."""
    variants = [variant for status in schemas.statuses()
                for variant in (status.upper(), status.capitalize(), status[0] + status[1:].upper())
                if variant != status]
    return st.sampled_from(variants)


def outside_statuses() -> SearchStrategy[str]:
    """Status values outside the six: other case, unknown words, empty, odd characters."""
    generated = st.text(_TEXT, max_size=12).filter(lambda text: text not in schemas.statuses())
    return st.one_of(wrong_case_statuses(), st.sampled_from(OUTSIDE_STATUSES), generated)


def statuses() -> SearchStrategy[str | None]:
    """The ``status`` parameter: left out (2 in 5), one of the six (2 in 5) or outside them (1 in 5)."""
    return weighted((2, st.none()), (2, valid_statuses()), (1, outside_statuses()))


def unknown_parameter_names() -> SearchStrategy[str]:
    """Parameter names the contract does not define (never a case variant of a known one)."""
    generated = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
    return st.one_of(st.sampled_from(UNKNOWN_PARAMETER_NAMES), generated).filter(
        lambda name: name.lower() not in KNOWN_PARAMETERS)


def unknown_parameters() -> SearchStrategy[tuple[tuple[str, str], ...]]:
    """None in four requests out of five; otherwise one or two unknown parameters."""
    present = st.lists(st.tuples(unknown_parameter_names(), st.text(_TEXT, max_size=8)),
                       min_size=1, max_size=2, unique_by=lambda pair: pair[0]).map(tuple)
    return weighted((4, st.just(())), (1, present))


def queries(listing_size: int, sizes_by_status: dict[str, int] | None = None) -> SearchStrategy[Query]:
    """Whole queries. Offsets are weighted at the end of what the query lists: the listing,
    or the filtered listing's size from ``sizes_by_status`` when a known status is sent."""
    sizes = sizes_by_status or {}
    # Built once, not at every draw: a strategy costs more to build than to draw from.
    status_values, limit_values, unknown_values = statuses(), limits(), unknown_parameters()
    offset_values = {size: offsets(size) for size in {listing_size, *sizes.values()}}

    @st.composite
    def query(draw: st.DrawFn) -> Query:
        status = draw(status_values)
        offset = draw(offset_values[sizes.get(status, listing_size) if status is not None else listing_size])
        return Query(status=status, limit=draw(limit_values), offset=offset, unknown=draw(unknown_values))

    return query()


def page_sizes() -> SearchStrategy[int]:
    """The page size a client picks for its next page (always valid)."""
    return valid_limits()
