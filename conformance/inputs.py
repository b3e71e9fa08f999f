"""The chosen points of the request space that the parametrized checks probe.

Valid values come from the contract (limit 1-100, offset >= 0, the six statuses in
``schemas/job.schema.json``); positions in the listing are named here and resolved against
the walked listing at run time, so nothing depends on a particular dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.client import Credential
from conformance.model import Walk

LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 100, 50
PAGE_SIZES = (1, 2, 7, 50, 99, 100)
TILING_PAGE_SIZES = (1, 2, 7, 50, 99)
TILING_REQUEST_BUDGET = 60
MAX_TIE_RUNS = 20
FAR_OFFSET = 1_000_000_000

INVALID_LIMITS = ("0", "101", "-1", "1000", "abc", "1.5", "")
INVALID_OFFSETS = ("-1", "abc", "", "1.5")
OUTSIDE_STATUSES = ("SUCCEEDED", "Succeeded", "unknown", "", "succeeded ", "queued,running",
                    "süccëeded", "' OR '1'='1")
UNKNOWN_PARAMETERS = (("foo", "bar"), ("debug", "true"), ("sort", "created_at"), ("page", "2"))


@dataclass(frozen=True)
class Position:
    """A named offset in the listing, resolved against the walked listing."""

    name: str
    needs_end: bool

    def offset(self, listing: Walk) -> int | None:
        """The offset, or None when the listing is too short or its end is unknown."""
        size = len(listing)
        if self.needs_end and not listing.complete:
            return None
        offsets = {"first": 0, "second": 1, "inside": size // 3, "near-end": size - 3,
                   "last": size - 1, "end": size, "past-end": size + 1}
        offset = offsets[self.name]
        return offset if 0 <= offset <= size + 1 and (size >= 2 or self.name == "first") else None


WINDOW_POSITIONS = tuple(Position(name, needs_end) for name, needs_end in (
    ("first", False), ("second", False), ("inside", False), ("near-end", True), ("last", True)))
PAST_END_POSITIONS = tuple(Position(name, True) for name in ("end", "past-end"))


def near_miss_keys(real: Credential) -> dict[str, Credential]:
    """Keys one step from the real one, written in the shell as expansions of its variable."""
    key, variable = real.value, real.shell.removeprefix("$")
    changed_last = "A" if key[-1:] != "A" else "B"
    return {
        "one-character-changed": Credential("X-API-Key", key[:-1] + changed_last, f"${{{variable}%?}}{changed_last}"),
        "truncated": Credential("X-API-Key", key[:-1], f"${{{variable}%?}}"),
        "extended": Credential("X-API-Key", key + "0", f"${{{variable}}}0"),
    }


MADE_UP_KEYS = {
    "empty": Credential.literal_api_key(""),
    "unknown": Credential.literal_api_key("fk_live_00000000000000000000000000000000"),
    "malformed": Credential.literal_api_key("not a key"),
}
