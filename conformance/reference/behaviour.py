"""How the reference deployment answers, as small overridable hooks.

``Behaviour`` is the correct deployment. A fault or a legitimate variation is a subclass
that overrides one hook; the app calls the hooks in this order:

    authenticate -> authorize -> parse_query -> select_jobs -> render_job -> render_page
    (any error: render_error) -> finalize

``authenticate`` reads the ``credentials`` and hands them to ``api_key_user`` or to
``bearer_user`` (which calls ``verify_token``).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from conformance.reference import data, tokens
from conformance.schemas import statuses

DEFAULT_LIMIT = 50
MIN_LIMIT = 1
MAX_LIMIT = 100
DEFAULT_OFFSET = 0
# int() refuses more than 4300 digits; an offset that long is far past any listing anyway.
_MAX_INTEGER_DIGITS = 4000
_DIGITS = re.compile(r"[0-9]+")
BEARER_SCHEME = "Bearer"  # case-sensitive

Kind = Literal["reference", "fault", "variation"]


@dataclass(frozen=True)
class Caller:
    """An authenticated member asking for their jobs in one organization."""

    user_id: str
    organization_id: str


@dataclass(frozen=True)
class Credentials:
    scheme: Literal["api_key", "bearer"]
    value: str


@dataclass(frozen=True)
class Query:
    """The validated query: the window and the optional status filter."""

    limit: int = DEFAULT_LIMIT
    offset: int = DEFAULT_OFFSET
    status: str | None = None


@dataclass(frozen=True)
class ErrorSpec:
    """An error to answer with; ``render_error`` turns it into the envelope."""

    status: int
    code: str
    message: str
    system_message: str
    type: str
    details: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


class Behaviour:
    """The correct deployment; each method is a hook a fault or variation may override."""

    name: ClassVar[str] = "reference"
    description: ClassVar[str] = "The correct deployment of the contract."
    breaks: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[Kind] = "reference"

    # Authentication and authorization

    def credentials(self, request: Request) -> Credentials | None:
        """``X-API-Key`` first, else ``Authorization: Bearer``; None when neither is sent."""
        api_key = request.headers.get("x-api-key")
        if api_key is not None:
            return Credentials("api_key", api_key)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # HTTP strips trailing spaces, so "Bearer " arrives as a bare "Bearer": an empty token.
        if scheme == BEARER_SCHEME:
            return Credentials("bearer", token)
        return None

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        credentials = self.credentials(request)
        if credentials is None:
            return authentication_required()
        if credentials.scheme == "api_key":
            user_id = self.api_key_user(db, credentials.value)
        else:
            user_id = self.bearer_user(db, credentials.value)
        if isinstance(user_id, ErrorSpec):
            return user_id
        return Caller(user_id, request.path_params["organization_id"])

    def api_key_user(self, db: sqlite3.Connection, key: str) -> str | ErrorSpec:
        """The holder of an active key; an unknown key or one that may no longer be used is refused."""
        found = data.api_key_status(db, key)
        if found is None:
            return invalid_api_key()
        user_id, status = found
        if status != data.ACTIVE:
            return api_key_unusable(status)
        return user_id

    def bearer_user(self, db: sqlite3.Connection, token: str) -> str | ErrorSpec:
        """The member a bearer token names, once its form, signature and expiry check out."""
        try:
            claims = self.verify_token(token, data.token_secret(db))
        except tokens.TokenRejected as rejected:
            return token_expired() if rejected.expired else token_invalid()
        user_id = claims.get("sub")
        if not isinstance(user_id, str) or not data.user_exists(db, user_id):
            return token_invalid()
        return user_id

    def verify_token(self, token: str, secret: bytes) -> dict[str, Any]:
        return tokens.verify(token, secret)

    def authorize(self, db: sqlite3.Connection, caller: Caller) -> ErrorSpec | None:
        capabilities = data.member_capabilities(db, caller.user_id, caller.organization_id)
        if capabilities is None:
            return organization_access_denied()
        if data.CAPABILITY not in capabilities:
            return insufficient_permissions()
        return None

    # Query validation

    def query_value(self, params: QueryParams, name: str) -> str | None:
        """The raw value of one parameter; when it repeats, the last one wins."""
        values = params.getlist(name)
        return values[-1] if values else None

    def parse_limit(self, raw: str | None) -> int | ErrorSpec:
        if raw is None:
            return DEFAULT_LIMIT
        value = parse_integer(raw)
        if value is None or not MIN_LIMIT <= value <= MAX_LIMIT:
            reason = f"limit must be an integer from {MIN_LIMIT} to {MAX_LIMIT}"
            return validation_error("limit", raw, reason)
        return value

    def parse_offset(self, raw: str | None) -> int | ErrorSpec:
        if raw is None:
            return DEFAULT_OFFSET
        value = parse_integer(raw)
        if value is None:
            reason = f"offset must be an integer from 0, of at most {_MAX_INTEGER_DIGITS} digits"
            return validation_error("offset", raw, reason)
        return value

    def parse_status(self, raw: str | None) -> str | None | ErrorSpec:
        if raw is None or raw in statuses():
            return raw
        return validation_error("status", raw, f"status must be one of: {', '.join(statuses())}")

    def parse_query(self, params: QueryParams) -> Query | ErrorSpec:
        limit = self.parse_limit(self.query_value(params, "limit"))
        if isinstance(limit, ErrorSpec):
            return limit
        offset = self.parse_offset(self.query_value(params, "offset"))
        if isinstance(offset, ErrorSpec):
            return offset
        status = self.parse_status(self.query_value(params, "status"))
        if isinstance(status, ErrorSpec):
            return status
        return Query(limit=limit, offset=offset, status=status)

    # Data

    def select_jobs(
        self, db: sqlite3.Connection, caller: Caller, query: Query
    ) -> list[sqlite3.Row] | ErrorSpec:
        """The page's rows; a fault may refuse the window with an error instead."""
        return data.fetch_jobs(
            db,
            user_id=caller.user_id,
            organization_id=caller.organization_id,
            status=query.status,
            limit=query.limit,
            offset=query.offset,
        )

    # Rendering

    def render_job(self, row: sqlite3.Row) -> dict[str, Any]:
        return data.job_view(row)

    def render_page(self, jobs: list[dict[str, Any]], query: Query) -> dict[str, Any]:
        return {"jobs": jobs, "limit": query.limit, "offset": query.offset}

    def new_trace_id(self) -> str:
        return f"req_{uuid.uuid4().hex}"

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        """The HTTP status, headers and envelope body for an error."""
        trace_id = self.new_trace_id()
        body = {
            "success": False,
            "error": {
                "code": spec.code,
                "message": spec.message,
                "system_message": spec.system_message,
                "type": spec.type,
                "status": spec.status,
                "details": dict(spec.details),
                "trace_id": trace_id,
                "timestamp": utc_timestamp(),
            },
        }
        return spec.status, {**spec.headers, "x-request-id": trace_id}, body

    def finalize(self, request: Request, response: Response) -> Response:
        """Last touch on every response; a 200 gets its fresh ``x-request-id`` here."""
        if "x-request-id" not in response.headers:
            response.headers["x-request-id"] = self.new_trace_id()
        return response


def parse_integer(raw: str) -> int | None:
    """A non-negative integer written in ASCII digits only (leading zeros allowed), else None."""
    if not _DIGITS.fullmatch(raw):
        return None
    significant = raw.lstrip("0") or "0"
    if len(significant) > _MAX_INTEGER_DIGITS:
        return None
    return int(significant)


def utc_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The provider's error catalogue, as far as this endpoint uses it.


def authentication_required() -> ErrorSpec:
    return ErrorSpec(
        401,
        "AUTHENTICATION_REQUIRED",
        "Authentication required. Please provide a valid API key.",
        "Missing or invalid authorization header",
        "authentication_error",
    )


def invalid_api_key() -> ErrorSpec:
    return ErrorSpec(
        401,
        "INVALID_API_KEY",
        "The API key provided is invalid.",
        "API key not recognised",
        "authentication_error",
    )


def token_invalid() -> ErrorSpec:
    return ErrorSpec(
        401,
        "TOKEN_INVALID",
        "Your session is invalid. Please sign in again.",
        "Bearer token not recognised",
        "authentication_error",
    )


def token_expired() -> ErrorSpec:
    return ErrorSpec(
        401,
        "TOKEN_EXPIRED",
        "Your session has expired. Please sign in again.",
        "Bearer token expired",
        "authentication_error",
    )


# API key statuses other than active, and the provider's code for each.
API_KEY_STATUS_CODES = {
    "deactivated": "API_KEY_DEACTIVATED",
    "paused": "API_KEY_PAUSED",
    "expired": "API_KEY_EXPIRED",
}


def api_key_unusable(status: str) -> ErrorSpec:
    return ErrorSpec(
        401,
        API_KEY_STATUS_CODES.get(status, "INVALID_API_KEY"),
        "The API key provided can no longer be used.",
        f"API key is {status}",
        "authentication_error",
    )


def organization_access_denied() -> ErrorSpec:
    return ErrorSpec(
        403,
        "ORGANIZATION_ACCESS_DENIED",
        "You do not have access to this organization.",
        "Caller is not a member of the organization",
        "authorization_error",
    )


def insufficient_permissions() -> ErrorSpec:
    return ErrorSpec(
        403,
        "INSUFFICIENT_PERMISSIONS",
        "You do not have permission to access this resource.",
        f"{data.CAPABILITY} capability required",
        "authorization_error",
    )


def validation_error(field_name: str, value: str, system_message: str) -> ErrorSpec:
    return ErrorSpec(
        422,
        "VALIDATION_ERROR",
        "Validation failed",
        system_message,
        "validation_error",
        details={"field": field_name, "value": value},
    )


def http_error(status: int, headers: Mapping[str, str] | None = None) -> ErrorSpec:
    """The envelope for errors raised by routing: unknown paths and methods."""
    if status == 404:
        code, message, system_message = (
            "NOT_FOUND",
            "The requested resource was not found.",
            "No route matches the request path",
        )
    elif status == 405:
        code, message, system_message = (
            "METHOD_NOT_ALLOWED",
            "This method is not allowed for the resource.",
            "Only GET is supported on this endpoint",
        )
    else:
        code, message, system_message = (
            "HTTP_ERROR",
            "The request could not be processed.",
            f"HTTP {status}",
        )
    error_type = "client_error" if status < 500 else "server_error"
    return ErrorSpec(status, code, message, system_message, error_type, headers=dict(headers or {}))


def internal_error() -> ErrorSpec:
    return ErrorSpec(
        500,
        "INTERNAL_ERROR",
        "An unexpected error occurred. Please try again later.",
        "Unhandled exception while serving the request",
        "server_error",
    )
