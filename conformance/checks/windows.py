"""Pages of the listing at named positions, fetched once per run and shared by the
LIM, OFF and ORD checks."""

from __future__ import annotations

import pytest

from conformance.inputs import Position
from conformance.model import ListingModel, Walk


def resolve_offset(position: Position, listing: Walk) -> int:
    offset = position.offset(listing)
    if offset is None:
        reason = ("the end of the listing is unknown: it is longer than --max-listing "
                  f"({listing.describe()})" if position.needs_end and not listing.complete
                  else f"the listing ({listing.describe()}) is too short for position '{position.name}'")
        pytest.skip(reason)
    return offset


def expected_count(listing: Walk, offset: int, limit: int) -> int:
    if not listing.covers(offset + limit):
        pytest.skip(f"offset={offset} limit={limit} reaches past {listing.describe()}")
    return len(listing.window(offset, limit))


def window_page(model: ListingModel, offset: int, limit: int | None, status: str | None = None):
    params = {"offset": offset}
    if limit is not None:
        params["limit"] = limit
    if status is not None:
        params["status"] = status
    return model.page(**params)
