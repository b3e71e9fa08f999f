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
# Page sizes whose pages, joined from offset 0, must give the listing (ORD-02). Smaller sizes
# cost a request per job or two and caught nothing more; the client walk of the properties
# joins pages of every size.
TILING_PAGE_SIZES = (50, 99)
TILING_REQUEST_BUDGET = 6  # pages per size: the first 300 and 594 jobs, whatever the listing's length
# Runs of jobs sharing a created_at that ORD-02 asks twice and splits between pages.
MAX_TIE_RUNS = 2
FAR_OFFSET = 1_000_000_000

# The cases of every parametrized check are listed most telling first: under a request budget
# (--max-requests) the first case of every check goes before the second of any (see plan.py).
# Below: an error probe's value, then what a parser crashes on, then bounds and oddities.
INVALID_LIMITS = ("0", "abc", "101", "-1", "1000", "1.5", "")
INVALID_OFFSETS = ("-1", "abc", "1.5", "")
OUTSIDE_STATUSES = ("SUCCEEDED", "Succeeded", "unknown", "", "succeeded ", "queued,running",
                    "süccëeded", "' OR '1'='1")
UNKNOWN_PARAMETERS = (("foo", "bar"), ("debug", "true"), ("sort", "created_at"), ("page", "2"))


@dataclass(frozen=True)
class Position:
    """A named offset in the listing, resolved against the walked listing."""

    name: str
    needs_end: bool

    def offset(self, listing: Walk) -> int | None:
        """The offset, or None when the listing is too short or its end is unknown. A listing
        known as a prefix plus its last page has "inside" in the prefix and the end in the page."""
        size = listing.size
        if self.needs_end and not listing.end_known:
            return None
        offsets = {"first": 0, "second": 1, "inside": len(listing) // 3, "near-end": size - 3,
                   "last": size - 1, "end": size, "past-end": size + 1}
        offset = offsets[self.name]
        return offset if 0 <= offset <= size + 1 and (size >= 2 or self.name == "first") else None


WINDOW_POSITIONS = tuple(Position(name, needs_end) for name, needs_end in (
    ("first", False), ("second", False), ("inside", False), ("near-end", True), ("last", True)))
PAST_END_POSITIONS = tuple(Position(name, True) for name in ("end", "past-end"))
_POSITIONS = {position.name: position for position in WINDOW_POSITIONS + PAST_END_POSITIONS}

# The windows (page size, position) whose size and jobs LIM-02 and OFF-02 judge: every page
# size at the first job (the pages LIM-04 asks for anyway), and at each other position a small
# or a large size (a small and a large one inside), so that a page is cut by its limit inside
# the listing and by the end of the listing near it. Not every pair: each pair is a request,
# and the pairs left out caught nothing the others did not.
WINDOWS = tuple((limit, _POSITIONS["first"]) for limit in PAGE_SIZES) + tuple(
    (limit, _POSITIONS[name]) for name, limits in (("second", (7,)), ("inside", (2, 100)),
                                                   ("near-end", (50,)), ("last", (1,)))
    for limit in limits)
# One of those pages, whatever the listing's length (offset 1, limit 7): ORD-02 asks it once
# more, ROB-02 asks it with an unknown parameter.
INNER_PAGE = {"limit": 7, "offset": 1}
def window_id(value: object) -> str:
    """A window's part in a check id: ``7-inside``."""
    return value.name if isinstance(value, Position) else str(value)


# The windows at and past the end that OFF-03 judges empty.
PAST_END_WINDOWS = ((1, _POSITIONS["end"]), (50, _POSITIONS["past-end"]))
# The page size OFF-05 reads the offset echo from at each position: one of the windows above.
ECHO_WINDOWS = tuple(next(window for window in WINDOWS + PAST_END_WINDOWS if window[1] is position)
                     for position in WINDOW_POSITIONS + PAST_END_POSITIONS)


def near_miss_keys(real: Credential) -> dict[str, Credential]:
    """Keys one step from the real one, written in the shell as expansions of its variable."""
    key, variable = real.value, real.shell.removeprefix("$")
    changed_last = "A" if key[-1:] != "A" else "B"
    return {
        "one-character-changed": Credential("X-API-Key", key[:-1] + changed_last, f"${{{variable}%?}}{changed_last}"),
        "truncated": Credential("X-API-Key", key[:-1], f"${{{variable}%?}}"),
        "extended": Credential("X-API-Key", key + "0", f"${{{variable}}}0"),
    }


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TAMPERED_TOKEN_KINDS = ("last-character-changed", "last-segment-first-character-changed")
MALFORMED_TOKEN_KINDS = ("one-segment", "truncated", "bad-encoding")
# A tampered form, then a malformed one, then the others: a token service that does not check
# signatures and a token parser that crashes are told apart by the first two.
BAD_TOKEN_KINDS = (TAMPERED_TOKEN_KINDS[0], MALFORMED_TOKEN_KINDS[0], *TAMPERED_TOKEN_KINDS[1:],
                   *MALFORMED_TOKEN_KINDS[1:])
BAD_TOKEN_FORMS = {
    "last-character-changed": "the bearer token with its last character changed",
    "last-segment-first-character-changed": "the bearer token with the first character of its last segment changed",
    "truncated": "the bearer token truncated before its last segment",
    "one-segment": "the first segment of the bearer token alone",
    "bad-encoding": "the bearer token ending in a character that is not base64url ('*')",
}


def changed_character(character: str) -> str:
    """Another base64url character that differs in its highest bit, so the bytes a decoder
    reads from it differ too (the low bits of a segment's last character may be padding)."""
    position = BASE64URL.find(character)
    if position < 0:
        return "A"
    return BASE64URL[position ^ 32]


def bad_bearer_tokens(real: Credential) -> dict[str, Credential]:
    """Bearer tokens one step from the real one: tampered (:data:`TAMPERED_TOKEN_KINDS`) and
    not well-formed (:data:`MALFORMED_TOKEN_KINDS`), written in the shell as expansions of the
    real token's variable. A form that cannot be derived from this token (one segment of a
    token that has only one) is left out."""
    token, variable = real.value.removeprefix("Bearer "), real.shell.removeprefix("Bearer $")
    head, dot, last = token.rpartition(".")
    forms = {
        "last-character-changed": (token[:-1] + changed_character(token[-1:]),
                                   f"${{{variable}%?}}{changed_character(token[-1:])}"),
        "last-segment-first-character-changed": (
            f"{head}{dot}{changed_character(last[:1])}{last[1:]}",
            f"${{{variable}%.*}}.{changed_character(last[:1])}${{{variable}##*.?}}" if dot
            else f"{changed_character(last[:1])}${{{variable}#?}}"),
        # Cut before the last segment; a token of one segment loses its last character.
        "truncated": (head, f"${{{variable}%.*}}") if dot else (token[:-1], f"${{{variable}%?}}"),
        "bad-encoding": (token[:-1] + "*", f"${{{variable}%?}}*"),
    }
    if dot:
        forms["one-segment"] = (token.partition(".")[0], f"${{{variable}%%.*}}")
    return {kind: Credential("Authorization", f"Bearer {value}", f"Bearer {shell}")
            for kind, (value, shell) in forms.items() if value != token}


MADE_UP_KEYS = {
    "empty": Credential.literal_api_key(""),
    "unknown": Credential.literal_api_key("fk_live_00000000000000000000000000000000"),
    "malformed": Credential.literal_api_key("not a key"),
}
