"""Pages of the listing at named positions, fetched once per run and shared by the
LIM, OFF and ORD checks."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.inputs import Position
from conformance.model import ListingModel, Walk
from conformance.plan import Page


def resolve_offset(position: Position, listing: Walk) -> int:
    offset = position.offset(listing)
    if offset is None:
        reason = (f"the end of the listing is unknown: {unknown_end(listing)}"
                  if position.needs_end and not listing.end_known
                  else f"the listing ({listing.describe()}) is too short for position '{position.name}'")
        pytest.skip(reason)
    return offset


def unknown_end(listing: Walk) -> str:
    """Why the walk does not know where the listing ends."""
    if listing.repeated:
        return f"the walk stopped at a page repeating the one before it ({listing.describe()})"
    return f"it is longer than --max-listing and its end could not be found ({listing.describe()})"


def expected_count(listing: Walk, offset: int, limit: int) -> int:
    if not listing.knows(offset, limit):
        pytest.skip(f"offset={offset} limit={limit} reaches past {listing.describe()}")
    return len(listing.window(offset, limit))


def window_params(offset: int, limit: int | None, status: str | None = None) -> dict[str, Any]:
    """The query of the page at ``offset`` (sent as given, 0 included) of ``limit`` jobs;
    without a limit at offset 0 it is the page without parameters, which other checks ask for too."""
    params: dict[str, Any] = {"offset": offset} if offset or limit is not None else {}
    if limit is not None:
        params["limit"] = limit
    if status is not None:
        params["status"] = status
    return params


def window_page(model: ListingModel, offset: int, limit: int | None, status: str | None = None):
    return model.page(**window_params(offset, limit, status))


def declare_window(listing: Walk, position: Position, limit: int | None) -> list[Page]:
    """The page a window check at ``position`` asks for, when the listing resolves it (the
    check's own skips aside: a declared page the check does not ask for costs a request)."""
    offset = position.offset(listing)
    if offset is None or (limit is not None and not listing.knows(offset, limit)):
        return []
    return [Page.of(**window_params(offset, limit))]
