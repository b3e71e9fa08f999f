"""The reference deployment's bearer tokens: JWTs signed with HS256, verified with PyJWT.

Each seeded database has its own signing secret (drawn from the seed), so the same seed gives
the same tokens. A token names its user in ``sub`` and always carries ``exp``.
"""

from __future__ import annotations

from typing import Any

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "iat", "exp")


class TokenRejected(Exception):
    """The token cannot be used. ``expired`` says it was valid once but its time is over."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def issue(secret: bytes, claims: dict[str, Any]) -> str:
    """A signed token carrying ``claims`` (which must include every :data:`REQUIRED_CLAIMS`)."""
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise ValueError(f"a token needs the claims {', '.join(missing)}")
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, secret: bytes, *, check_signature: bool = True, check_expiry: bool = True) -> dict[str, Any]:
    """The claims of a well-formed token signed with ``secret`` and not expired; else
    :class:`TokenRejected`. The two flags exist for the faults that skip a check."""
    options = {"verify_signature": check_signature, "verify_exp": check_expiry, "require": list(REQUIRED_CLAIMS)}
    try:
        return jwt.decode(token, secret, algorithms=[ALGORITHM], options=options)  # type: ignore[arg-type]
    except jwt.ExpiredSignatureError as error:
        raise TokenRejected(str(error), expired=True) from None
    except jwt.InvalidTokenError as error:
        raise TokenRejected(str(error)) from None
