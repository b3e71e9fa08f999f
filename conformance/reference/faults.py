"""Named faults (broken deployments) and variations (legitimate differences) of the reference.

Each is a :class:`Behaviour` subclass overriding one hook. A fault lists in ``breaks`` the
contract requirements it violates; a variation (see ``variations.py``) breaks nothing and the
suite must pass it.

``breaks`` never names DAT-01 unless the fault breaks nothing else: the oracle comparison
fails for every fault that changes what a job shows, so it must never be what catches one.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import itertools
import sqlite3
import threading
from datetime import datetime, timedelta
from typing import Any, ClassVar

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from conformance.reference import data, tokens
from conformance.reference.behaviour import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MIN_LIMIT,
    Behaviour,
    Caller,
    ErrorSpec,
    Query,
    authentication_required,
    insufficient_permissions,
    invalid_api_key,
    organization_access_denied,
    parse_integer,
    validation_error,
)
from conformance.reference.variations import (
    AddedLatency,
    BearerPreferred,
    CharsetContentType,
    ConnectionClose,
    DetailedDetails,
    ExtraFields,
    FractionalUtcTimestamps,
    GzipBodies,
    ManyJobs,
    NonMemberInsufficientPermissions,
    OccasionalRateLimit,
    TieOrderIdAscending,
    UuidTraceIds,
    Validation400,
)
from conformance.schemas import statuses

Rows = list[sqlite3.Row]
KNOWN_PARAMETERS = frozenset({"limit", "offset", "status"})


class Fault(Behaviour):
    kind = "fault"


class JobFault(Fault):
    """A fault in what the list view shows of each job: ``change_job`` edits it in place."""

    def render_job(self, row: sqlite3.Row) -> dict[str, Any]:
        job = super().render_job(row)
        self.change_job(job)
        return job

    def change_job(self, job: dict[str, Any]) -> None:
        raise NotImplementedError


def _rows(db: sqlite3.Connection, caller: Caller, query: Query, **overrides: Any) -> Rows:
    """The page the reference would select, with some arguments of the query overridden."""
    arguments: dict[str, Any] = {"status": query.status, "limit": query.limit,
                                 "offset": query.offset, **overrides}
    return data.fetch_jobs(db, user_id=caller.user_id, organization_id=caller.organization_id,
                           **arguments)


def _whole(db: sqlite3.Connection, caller: Caller, status: str | None = None, **overrides: Any) -> Rows:
    """Every job of the caller (optionally of one status), in the reference order."""
    return _rows(db, caller, Query(status=status), limit=-1, offset=0, **overrides)


def _window(rows: Rows, query: Query) -> Rows:
    return rows[query.offset : query.offset + query.limit]


def _lenient_integer(raw: str) -> int | None:
    """What ``int()`` makes of a query value, or None: signs and spaces accepted."""
    try:
        return int(raw)
    except ValueError:
        return None


# Ordering


class OldestFirst(Fault):
    name = "oldest-first"
    description = "The listing is sorted oldest first."
    breaks = ("ORD-01",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        return _rows(db, caller, query, order_by="created_at ASC, id ASC")


class OrderedById(Fault):
    name = "ordered-by-id"
    description = "The listing is sorted by id (random hex), not by created_at."
    breaks = ("ORD-01",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        return _rows(db, caller, query, order_by="id DESC")


class UnstableTies(Fault):
    name = "unstable-ties"
    description = "Two replicas answer in turn and break created_at ties in opposite orders."
    breaks = ("ORD-02",)

    def __init__(self) -> None:
        self._replicas = itertools.cycle(("created_at DESC, id DESC", "created_at DESC, id ASC"))
        self._lock = threading.Lock()

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        with self._lock:
            order_by = next(self._replicas)
        return _rows(db, caller, query, order_by=order_by)


class TieOrderDependsOnLimit(Fault):
    name = "tie-order-depends-on-limit"
    description = "Small pages break created_at ties by ascending id, large ones by descending id."
    breaks = ("ORD-02",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows | ErrorSpec:
        if query.limit < DEFAULT_LIMIT:
            return _rows(db, caller, query, order_by="created_at DESC, id ASC")
        return super().select_jobs(db, caller, query)


class OrderBreaksDeep(Fault):
    name = "order-breaks-deep"
    description = "Past the newest 200 jobs the listing continues from an archive in id order."
    breaks = ("ORD-01",)
    RECENT: ClassVar[int] = 200

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        rows = _whole(db, caller, query.status)
        archive = sorted(rows[self.RECENT :], key=lambda row: row["id"], reverse=True)
        return _window(rows[: self.RECENT] + archive, query)


class PagesFromWrongEnd(Fault):
    name = "pages-from-wrong-end"
    description = "offset counts from the oldest job; each page is newest first within itself."
    breaks = ("ORD-01",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        rows = _whole(db, caller, query.status)
        end = max(len(rows) - query.offset, 0)
        return rows[max(end - query.limit, 0) : end]


# Limit


class DefaultLimit20(Fault):
    name = "default-limit-20"
    description = "Without limit a page holds (and echoes) 20 jobs."
    breaks = ("LIM-01",)

    def parse_limit(self, raw: str | None) -> int | ErrorSpec:
        return 20 if raw is None else super().parse_limit(raw)


class LimitOffByOne(Fault):
    name = "limit-off-by-one"
    description = "A page holds one job more than limit (the has-more probe row is not dropped)."
    breaks = ("LIM-02",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        return _rows(db, caller, query, limit=query.limit + 1)


class LimitMaxExclusive(Fault):
    name = "limit-max-exclusive"
    description = "limit=100 is refused with a validation error (the bound check is < 100)."
    breaks = ("LIM-02",)

    def parse_limit(self, raw: str | None) -> int | ErrorSpec:
        value = super().parse_limit(raw)
        if value == MAX_LIMIT:
            return validation_error("limit", str(raw), f"limit must be below {MAX_LIMIT}")
        return value


class LimitBoundsAccepted(Fault):
    name = "limit-bounds-accepted"
    description = "Any integer limit is applied: 0 gives an empty page, -1 no limit, 1000 a page of 1000."
    breaks = ("LIM-03",)

    def parse_limit(self, raw: str | None) -> int | ErrorSpec:
        value = None if raw is None else _lenient_integer(raw)
        return super().parse_limit(raw) if value is None else value


class LimitSilentlyClamped(Fault):
    name = "limit-silently-clamped"
    description = "An integer limit outside 1-100 is clamped into range without an error."
    breaks = ("LIM-03",)

    def parse_limit(self, raw: str | None) -> int | ErrorSpec:
        value = None if raw is None else _lenient_integer(raw)
        return super().parse_limit(raw) if value is None else min(max(value, MIN_LIMIT), MAX_LIMIT)


class LimitNotInteger500(Fault):
    name = "limit-not-integer-500"
    description = "A limit that is not an integer crashes int() and gets a 500."
    breaks = ("LIM-03", "ROB-01")

    def parse_limit(self, raw: str | None) -> int | ErrorSpec:
        if raw is not None:
            int(raw)  # raises ValueError on 'abc', '1.5', ''
        return super().parse_limit(raw)


class LimitEchoDefault(Fault):
    name = "limit-echo-default"
    description = "The page echoes limit=50 whatever limit was applied."
    breaks = ("LIM-04",)

    def render_page(self, jobs: list[dict[str, Any]], query: Query) -> dict[str, Any]:
        return {**super().render_page(jobs, query), "limit": DEFAULT_LIMIT}


class LimitEchoString(Fault):
    name = "limit-echo-string"
    description = "The page echoes limit as a string (\"7\")."
    breaks = ("SHP-01", "LIM-04")

    def render_page(self, jobs: list[dict[str, Any]], query: Query) -> dict[str, Any]:
        return {**super().render_page(jobs, query), "limit": str(query.limit)}


# Offset


class OffsetIgnored(Fault):
    name = "offset-ignored"
    description = "offset is ignored: every page starts at the newest job."
    breaks = ("OFF-02",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        return _rows(db, caller, query, offset=0)


class OffsetOffByOne(Fault):
    name = "offset-off-by-one"
    description = "A non-zero offset skips one job too many."
    breaks = ("OFF-02",)

    def select_jobs(
        self, db: sqlite3.Connection, caller: Caller, query: Query
    ) -> Rows | ErrorSpec:
        if query.offset > 0:
            query = dataclasses.replace(query, offset=query.offset + 1)
        return super().select_jobs(db, caller, query)


class OffsetPastEnd404(Fault):
    name = "offset-past-end-404"
    description = "An offset at or past the end of the listing gets 404 NOT_FOUND."
    breaks = ("OFF-03",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows | ErrorSpec:
        rows = super().select_jobs(db, caller, query)
        if not rows and query.offset > 0:
            return ErrorSpec(404, "NOT_FOUND", "No jobs at this offset.",
                             f"offset {query.offset} is past the end of the listing", "client_error")
        return rows


class OffsetNegativeAccepted(Fault):
    name = "offset-negative-accepted"
    description = "A negative offset is treated as 0."
    breaks = ("OFF-04",)

    def parse_offset(self, raw: str | None) -> int | ErrorSpec:
        value = None if raw is None else _lenient_integer(raw)
        return super().parse_offset(raw) if value is None or value >= 0 else 0


class OffsetInvalid500(Fault):
    name = "offset-invalid-500"
    description = "An offset that is not an integer crashes int() and gets a 500."
    breaks = ("OFF-04", "ROB-01")

    def parse_offset(self, raw: str | None) -> int | ErrorSpec:
        if raw is not None and parse_integer(raw) is None:
            int(raw)  # raises ValueError on 'abc', '1.5', '', '0x10'
        return super().parse_offset(raw)


class FilterAfterPagination(Fault):
    name = "filter-after-pagination"
    description = "The status filter is applied to the page after limit/offset, not before."
    breaks = ("STA-02",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        page = _rows(db, caller, query, status=None)
        return [row for row in page if query.status is None or row["status"] == query.status]


class OffsetEchoZero(Fault):
    name = "offset-echo-zero"
    description = "The page echoes offset=0 whatever offset was applied."
    breaks = ("OFF-05",)

    def render_page(self, jobs: list[dict[str, Any]], query: Query) -> dict[str, Any]:
        return {**super().render_page(jobs, query), "offset": 0}


@dataclasses.dataclass(frozen=True)
class _QueryWithEcho(Query):
    offset_given: bool = True


class OffsetEchoNull(Fault):
    name = "offset-echo-null"
    description = "Without offset the page echoes offset: null (an Optional parameter echoed as is)."
    breaks = ("OFF-01", "SHP-01")

    def parse_query(self, params: QueryParams) -> Query | ErrorSpec:
        query = super().parse_query(params)
        if isinstance(query, ErrorSpec):
            return query
        return _QueryWithEcho(**dataclasses.asdict(query), offset_given="offset" in params)

    def render_page(self, jobs: list[dict[str, Any]], query: Query) -> dict[str, Any]:
        page = super().render_page(jobs, query)
        if not getattr(query, "offset_given", True):
            page["offset"] = None
        return page


# Status filter


class StatusFilterIgnored(Fault):
    name = "status-filter-ignored"
    description = "status is validated but not applied."
    breaks = ("STA-02",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        return _rows(db, caller, query, status=None)


class StatusRefusedRejected(Fault):
    name = "status-refused-rejected"
    description = "status=refused gets a validation error (the enum predates that status)."
    breaks = ("STA-01",)

    def parse_status(self, raw: str | None) -> str | None | ErrorSpec:
        if raw == "refused":
            return validation_error("status", raw, "status must be one of the five known values")
        return super().parse_status(raw)


class UnknownStatusReturnsEverything(Fault):
    name = "unknown-status-returns-everything"
    description = "A status outside the six is ignored: the unfiltered page comes back."
    breaks = ("STA-03", "STA-04")

    def parse_status(self, raw: str | None) -> str | None | ErrorSpec:
        return raw if raw in statuses() else None


class StatusDropsMatches(Fault):
    name = "status-drops-matches"
    description = "A filtered listing only searches the caller's newest 200 jobs (a recent-jobs index)."
    breaks = ("STA-02",)
    INDEXED: ClassVar[int] = 200

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows | ErrorSpec:
        if query.status is None:
            return super().select_jobs(db, caller, query)
        recent = _whole(db, caller)[: self.INDEXED]
        return _window([row for row in recent if row["status"] == query.status], query)


class StatusCaseInsensitive(Fault):
    name = "status-case-insensitive"
    description = "status is matched case-insensitively: status=SUCCEEDED lists succeeded jobs."
    breaks = ("STA-03", "STA-04")

    def parse_status(self, raw: str | None) -> str | None | ErrorSpec:
        if raw is not None and raw.lower() in statuses():
            return raw.lower()
        return super().parse_status(raw)


class UnknownStatusEmpty(Fault):
    name = "unknown-status-empty"
    description = "A status outside the six gets 200 with no jobs instead of a validation error."
    breaks = ("STA-04",)

    def parse_status(self, raw: str | None) -> str | None | ErrorSpec:
        return raw


class UnknownStatus500(Fault):
    name = "unknown-status-500"
    description = "A status outside the six crashes the enum lookup and gets a 500."
    breaks = ("STA-03", "ROB-01")

    def parse_status(self, raw: str | None) -> str | None | ErrorSpec:
        if raw is not None and raw not in statuses():
            raise KeyError(raw)
        return raw


# List-view fields


class PlaybackUrlFilled(JobFault):
    name = "playback-url-filled"
    description = "Succeeded jobs carry a signed playback URL in the list view."
    breaks = ("SHP-03",)

    def change_job(self, job: dict[str, Any]) -> None:
        if job["status"] == "succeeded":
            track_id = job["result_track_id"]
            job["playback_url"] = f"https://cdn.reference.invalid/{track_id}.mp3?sig=0"


class TrackFilled(JobFault):
    name = "track-filled"
    description = "Succeeded jobs embed their track summary in the list view."
    breaks = ("SHP-04",)

    def change_job(self, job: dict[str, Any]) -> None:
        if job["status"] == "succeeded":
            job["track"] = {"id": job["result_track_id"], "title": "Untitled", "duration_s": 132}


class NullFieldsOmitted(Fault):
    name = "null-fields-omitted"
    description = "Members whose value is null are left out of each job (exclude_none)."
    breaks = ("SHP-02",)

    def render_job(self, row: sqlite3.Row) -> dict[str, Any]:
        return {key: value for key, value in super().render_job(row).items() if value is not None}


class ProgressAsString(JobFault):
    name = "progress-as-string"
    description = "progress is a string (\"100\")."
    breaks = ("SHP-02",)

    def change_job(self, job: dict[str, Any]) -> None:
        job["progress"] = str(job["progress"])


class ProgressPerMille(JobFault):
    name = "progress-per-mille"
    description = "progress runs 0-1000 (the engine's per-mille), out of the 0-100 range."
    breaks = ("SHP-02",)

    def change_job(self, job: dict[str, Any]) -> None:
        job["progress"] *= 10


class BadIdPrefix(JobFault):
    name = "bad-id-prefix"
    description = "Job ids lose their mgen_ prefix (gen_...)."
    breaks = ("SHP-02",)

    def change_job(self, job: dict[str, Any]) -> None:
        job["id"] = "gen_" + job["id"].removeprefix("mgen_")


class LocalTime(JobFault):
    name = "local-time"
    description = "created_at is the server's local time (UTC+2) without a designator."
    breaks = ("SHP-02",)

    def change_job(self, job: dict[str, Any]) -> None:
        job["created_at"] = _shifted(job["created_at"], hours=2, suffix="")


class SucceededWithoutTrackId(JobFault):
    name = "succeeded-without-track-id"
    description = "Succeeded jobs show result_track_id null (it is filled in by a later sync)."
    breaks = ("SHP-05",)

    def change_job(self, job: dict[str, Any]) -> None:
        if job["status"] == "succeeded":
            job["result_track_id"] = None


class PartialTrackOnUnsucceeded(JobFault):
    name = "partial-track-on-unsucceeded"
    description = "Failed and cancelled jobs that made progress name the partial track they left."
    breaks = ("SHP-06",)

    def change_job(self, job: dict[str, Any]) -> None:
        if job["status"] in ("failed", "cancelled") and job["progress"] > 0:
            job["result_track_id"] = "mtrack_partial_" + job["id"].removeprefix("mgen_")


class FailedWithoutMessage(JobFault):
    name = "failed-without-message"
    description = "Failed jobs carry an empty error_message."
    breaks = ("SHP-07",)

    def change_job(self, job: dict[str, Any]) -> None:
        if job["status"] == "failed":
            job["error_message"] = ""


class DuplicateJobs(Fault):
    name = "duplicate-jobs"
    description = "Every 25th job appears twice in a row (a join on a one-to-many table)."
    breaks = ("SHP-08",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        doubled = []
        for position, row in enumerate(_whole(db, caller, query.status)):
            doubled += [row, row] if position % 25 == 24 else [row]
        return _window(doubled, query)


class PageAsHtml(Fault):
    name = "page-as-html"
    description = "200 pages are labelled Content-Type: text/html (the JSON body is unchanged)."
    breaks = ("SHP-01",)

    def finalize(self, request: Request, response: Response) -> Response:
        if response.status_code == 200:
            response.headers["content-type"] = "text/html; charset=utf-8"
        return super().finalize(request, response)


# Authentication


class NoAuth(Fault):
    name = "no-auth"
    description = "A request without credentials is served as the main member."
    breaks = ("AUTH-01",)

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        if self.credentials(request) is None:
            return Caller(data.main_user_id(db), request.path_params["organization_id"])
        return super().authenticate(request, db)


class MissingCredentials403(Fault):
    name = "missing-credentials-403"
    description = "A request without credentials gets 403 instead of 401."
    breaks = ("AUTH-01",)

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        if self.credentials(request) is None:
            return dataclasses.replace(authentication_required(), status=403,
                                       type="authorization_error")
        return super().authenticate(request, db)


class UnknownKey403(Fault):
    name = "unknown-key-403"
    description = "An unknown or malformed key gets 403 FORBIDDEN instead of 401."
    breaks = ("AUTH-02",)

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        caller = super().authenticate(request, db)
        if isinstance(caller, ErrorSpec) and caller.code != "AUTHENTICATION_REQUIRED":
            return ErrorSpec(403, "FORBIDDEN", "Access denied.", "Key not accepted",
                             "authorization_error")
        return caller


class MissingKeyWrongCode(Fault):
    name = "missing-key-wrong-code"
    description = "A request without credentials gets 401 INVALID_API_KEY."
    breaks = ("AUTH-01",)

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        if self.credentials(request) is None:
            return invalid_api_key()
        return super().authenticate(request, db)


class UnauthorizedCode(Fault):
    name = "unauthorized-code"
    description = "Every 401 carries code UNAUTHORIZED, which is not in the provider's catalogue."
    breaks = ("AUTH-01", "AUTH-02")

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        if spec.status == 401:
            spec = dataclasses.replace(spec, code="UNAUTHORIZED")
        return super().render_error(spec)


class AuthErrorWrongType(Fault):
    name = "auth-error-wrong-type"
    description = "Every 401 carries type client_error instead of authentication_error."
    breaks = ("AUTH-01", "AUTH-02")

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        if spec.status == 401:
            spec = dataclasses.replace(spec, type="client_error")
        return super().render_error(spec)


class HtmlAuthErrors(Fault):
    name = "html-auth-errors"
    description = "401s come back as the gateway's HTML page instead of the JSON envelope."
    breaks = ("AUTH-01", "AUTH-02", "ENV-01", "ENV-02", "ROB-01")

    def finalize(self, request: Request, response: Response) -> Response:
        if response.status_code == 401:
            page = "<html><head><title>401 Authorization Required</title></head><body>" \
                   "<center><h1>401 Authorization Required</h1></center></body></html>"
            response = HTMLResponse(page, status_code=401)
        return super().finalize(request, response)


class NearMissKeyAccepted(Fault):
    name = "near-miss-key-accepted"
    description = "API keys are matched on their first 32 characters, so near-miss keys pass."
    breaks = ("AUTH-02",)
    PREFIX: ClassVar[int] = 32

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        credentials = self.credentials(request)
        if credentials is not None and credentials.scheme == "api_key" and len(credentials.value) >= self.PREFIX:
            row = db.execute("SELECT user_id FROM api_keys WHERE substr(key, 1, ?) = substr(?, 1, ?)",
                             (self.PREFIX, credentials.value, self.PREFIX)).fetchone()
            if row is not None:
                return Caller(row[0], request.path_params["organization_id"])
        return super().authenticate(request, db)


class MalformedKey500(Fault):
    name = "malformed-key-500"
    description = "A key that is not of the form fk_... crashes the key parser and gets a 500."
    breaks = ("AUTH-02", "ROB-01")

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        credentials = self.credentials(request)
        if credentials is not None and credentials.scheme == "api_key" and credentials.value:
            _prefix, _environment, _secret = credentials.value.split("_", 2)  # ValueError on 'not a key'
        return super().authenticate(request, db)


class ValidationBeforeAuth(Fault):
    name = "validation-before-auth"
    description = "The query is validated before the credentials: no key plus limit=0 gets 422."
    breaks = ("AUTH-06",)

    def authenticate(self, request: Request, db: sqlite3.Connection) -> Caller | ErrorSpec:
        query = self.parse_query(request.query_params)
        if isinstance(query, ErrorSpec):
            return query
        return super().authenticate(request, db)


class BearerSignatureNotChecked(Fault):
    name = "bearer-signature-not-checked"
    description = "Bearer tokens are decoded without checking their signature, so tampered tokens pass."
    breaks = ("AUTH-08",)

    def verify_token(self, token: str, secret: bytes) -> dict[str, Any]:
        return tokens.verify(token, secret, check_signature=False)


class MalformedToken500(Fault):
    name = "malformed-token-500"
    description = "A bearer token that is not three base64url segments crashes the token parser and gets a 500."
    breaks = ("AUTH-08", "ROB-01")

    def verify_token(self, token: str, secret: bytes) -> dict[str, Any]:
        for segment in token.split("."):  # a hand-rolled parser, before the library sees the token
            base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
        _header, _payload, _signature = token.split(".")  # ValueError on one or two segments
        return super().verify_token(token, secret)


class ExpiredTokenAccepted(Fault):
    name = "expired-token-accepted"
    description = "A bearer token's exp claim is not checked, so expired tokens pass."
    breaks = ("AUTH-09",)

    def verify_token(self, token: str, secret: bytes) -> dict[str, Any]:
        return tokens.verify(token, secret, check_expiry=False)


class RevokedKeyAccepted(Fault):
    name = "revoked-key-accepted"
    description = "API keys are looked up without their status, so revoked (deactivated) keys pass."
    breaks = ("AUTH-09",)

    def api_key_user(self, db: sqlite3.Connection, key: str) -> str | ErrorSpec:
        found = data.api_key_status(db, key)
        return invalid_api_key() if found is None else found[0]


class Bearer500(Fault):
    name = "bearer-500"
    description = "Every request with a bearer token gets a 500 (the token service is unreachable)."
    breaks = ("AUTH-07", "AUTH-08", "AUTH-09", "ROB-01")

    def bearer_user(self, db: sqlite3.Connection, token: str) -> str | ErrorSpec:
        raise ConnectionError("token introspection service unreachable")


# Authorization


class CapabilityNotEnforced(Fault):
    name = "capability-not-enforced"
    description = "Any member may list jobs: USE_MUSIC_GENERATION is not checked."
    breaks = ("AUTH-04",)

    def authorize(self, db: sqlite3.Connection, caller: Caller) -> ErrorSpec | None:
        denial = super().authorize(db, caller)
        return None if denial is not None and denial.code == "INSUFFICIENT_PERMISSIONS" else denial


class NoCapabilityWrongCode(Fault):
    name = "no-capability-wrong-code"
    description = "A member without the capability gets 403 ORGANIZATION_ACCESS_DENIED."
    breaks = ("AUTH-04",)

    def authorize(self, db: sqlite3.Connection, caller: Caller) -> ErrorSpec | None:
        denial = super().authorize(db, caller)
        return organization_access_denied() if denial is not None else None


class ForeignOrganizationReadable(Fault):
    name = "foreign-organization-readable"
    description = "Membership is not checked: any organization id gets 200 (with the caller's jobs there)."
    breaks = ("AUTH-05",)

    def authorize(self, db: sqlite3.Connection, caller: Caller) -> ErrorSpec | None:
        capabilities = data.member_capabilities(db, caller.user_id, caller.organization_id)
        if capabilities is not None and data.CAPABILITY not in capabilities:
            return insufficient_permissions()
        return None


class ForeignOrganization404(Fault):
    name = "foreign-organization-404"
    description = "A non-member gets 404 NOT_FOUND (hiding that the organization exists)."
    breaks = ("AUTH-05",)

    def authorize(self, db: sqlite3.Connection, caller: Caller) -> ErrorSpec | None:
        denial = super().authorize(db, caller)
        if denial is not None and denial.code == "ORGANIZATION_ACCESS_DENIED":
            return ErrorSpec(404, "NOT_FOUND", "Organization not found.",
                             "Caller is not a member of the organization", "client_error")
        return denial


class UnknownOrganization404(Fault):
    name = "unknown-organization-404"
    description = "An organization id that does not exist gets 404; existing ones get 403."
    breaks = ("AUTH-05",)

    def authorize(self, db: sqlite3.Connection, caller: Caller) -> ErrorSpec | None:
        known = db.execute("SELECT 1 FROM organizations WHERE id = ?", (caller.organization_id,))
        if known.fetchone() is None:
            return ErrorSpec(404, "NOT_FOUND", "Organization not found.",
                             f"No organization {caller.organization_id}", "client_error")
        return super().authorize(db, caller)


# Isolation


class OrganizationWideListing(Fault):
    name = "organization-wide-listing"
    description = "The listing holds every member's jobs in the organization."
    breaks = ("ISO-01",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        return _organization_rows(db, caller, query)


class IsolationLostWithStatus(Fault):
    name = "isolation-lost-with-status"
    description = "With a status filter the listing holds every member's jobs of that status."
    breaks = ("ISO-01",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows | ErrorSpec:
        if query.status is None:
            return super().select_jobs(db, caller, query)
        return _organization_rows(db, caller, query)


def _organization_rows(db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
    sql = f"SELECT {data.JOB_COLUMNS} FROM jobs WHERE org_id = ?"
    params: list[Any] = [caller.organization_id]
    if query.status is not None:
        sql += " AND status = ?"
        params.append(query.status)
    sql += f" ORDER BY {data.LISTING_ORDER} LIMIT ? OFFSET ?"
    return db.execute(sql, [*params, query.limit, min(query.offset, data.MAX_SQL_INTEGER)]).fetchall()


# Robustness


class UnknownParameter500(Fault):
    name = "unknown-parameter-500"
    description = "A query parameter other than limit, offset and status gets a 500."
    breaks = ("ROB-01", "ROB-02")

    def parse_query(self, params: QueryParams) -> Query | ErrorSpec:
        unknown = set(params) - KNOWN_PARAMETERS
        if unknown:
            raise TypeError(f"unexpected query parameters: {sorted(unknown)}")
        return super().parse_query(params)


class UnknownParameterRejected(Fault):
    name = "unknown-parameter-rejected"
    description = "A query parameter other than limit, offset and status gets a validation error."
    breaks = ("ROB-02",)

    def parse_query(self, params: QueryParams) -> Query | ErrorSpec:
        unknown = sorted(set(params) - KNOWN_PARAMETERS)
        if unknown:
            return validation_error(unknown[0], params[unknown[0]], "unknown query parameter")
        return super().parse_query(params)


class RepeatedParameter500(Fault):
    name = "repeated-parameter-500"
    description = "A parameter given twice (limit=1&limit=2) gets a 500."
    breaks = ("ROB-01",)

    def query_value(self, params: QueryParams, name: str) -> str | None:
        values = params.getlist(name)
        if len(values) > 1:
            raise TypeError(f"{name} given {len(values)} times")
        return super().query_value(params, name)


class HugeOffset500(Fault):
    name = "huge-offset-500"
    description = "An offset beyond 2**63 overflows the database driver and gets a 500."
    breaks = ("ROB-01",)

    def select_jobs(self, db: sqlite3.Connection, caller: Caller, query: Query) -> Rows:
        sql = f"SELECT {data.JOB_COLUMNS} FROM jobs WHERE user_id = ? AND org_id = ?"
        params: list[Any] = [caller.user_id, caller.organization_id]
        if query.status is not None:
            sql += " AND status = ?"
            params.append(query.status)
        sql += f" ORDER BY {data.LISTING_ORDER} LIMIT ? OFFSET ?"
        return db.execute(sql, [*params, query.limit, query.offset]).fetchall()


class ValidationWithoutEnvelope(Fault):
    name = "validation-without-envelope"
    description = "Validation errors are 422 with FastAPI's bare {\"detail\": [...]} body."
    breaks = ("ENV-01", "LIM-03", "OFF-04")

    def finalize(self, request: Request, response: Response) -> Response:
        if response.status_code == 422:
            detail = [{"loc": ["query"], "msg": "invalid value", "type": "value_error"}]
            response = JSONResponse({"detail": detail}, status_code=422)
        return super().finalize(request, response)


# Error envelope


class EnvelopeMissingMembers(Fault):
    name = "envelope-missing-members"
    description = "Errors lack system_message, trace_id and timestamp."
    breaks = ("ENV-01",)

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = super().render_error(spec)
        for member in ("system_message", "trace_id", "timestamp"):
            del body["error"][member]
        return status, headers, body


class ErrorStatus400(Fault):
    name = "error-status-400"
    description = "error.status is 400 in every client error, whatever the HTTP status."
    breaks = ("ENV-01",)

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = super().render_error(spec)
        if status < 500:
            body["error"]["status"] = 400
        return status, headers, body


class ErrorTimestampNaive(Fault):
    name = "error-timestamp-naive"
    description = "error.timestamp has no UTC designator (2026-06-28T10:30:00)."
    breaks = ("ENV-01",)

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = super().render_error(spec)
        body["error"]["timestamp"] = body["error"]["timestamp"].removesuffix("Z")
        return status, headers, body


class ErrorsAsText(Fault):
    name = "errors-as-text"
    description = "Error responses are labelled Content-Type: text/plain (the JSON body is unchanged)."
    breaks = ("ENV-02",)

    def finalize(self, request: Request, response: Response) -> Response:
        if response.status_code >= 400:
            response.headers["content-type"] = "text/plain; charset=utf-8"
        return super().finalize(request, response)


class SameTraceId(Fault):
    name = "same-trace-id"
    description = "Every error carries the same trace_id (generated once at start-up)."
    breaks = ("ENV-03",)
    TRACE_ID: ClassVar[str] = "req_00000000000000000000000000000000"

    def new_trace_id(self) -> str:
        return self.TRACE_ID


# Oracle: only the expected dataset can tell these from the reference.


class CreatedAtShifted(JobFault):
    name = "created-at-shifted"
    description = "created_at is local time (UTC+2) labelled as UTC: every job looks 2 hours younger."
    breaks = ("DAT-01",)

    def change_job(self, job: dict[str, Any]) -> None:
        job["created_at"] = _shifted(job["created_at"], hours=2, suffix="Z")


class StaleProgress(JobFault):
    name = "stale-progress"
    description = "Running jobs show progress 0 (read from a cache that is never refreshed)."
    breaks = ("DAT-01",)

    def change_job(self, job: dict[str, Any]) -> None:
        if job["status"] == "running":
            job["progress"] = 0


def _shifted(created_at: str, *, hours: int, suffix: str) -> str:
    moment = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + suffix


def _by_name(*behaviours: type[Behaviour]) -> dict[str, type[Behaviour]]:
    registry: dict[str, type[Behaviour]] = {}
    for behaviour in behaviours:
        if behaviour.name in registry:
            raise ValueError(f"two behaviours are named {behaviour.name!r}")
        registry[behaviour.name] = behaviour
    return registry


FAULTS: dict[str, type[Behaviour]] = _by_name(
    # ordering
    OldestFirst, OrderedById, UnstableTies, TieOrderDependsOnLimit, OrderBreaksDeep,
    PagesFromWrongEnd,
    # limit
    DefaultLimit20, LimitOffByOne, LimitMaxExclusive, LimitBoundsAccepted, LimitSilentlyClamped,
    LimitNotInteger500, LimitEchoDefault, LimitEchoString,
    # offset
    OffsetIgnored, OffsetOffByOne, OffsetPastEnd404, OffsetNegativeAccepted, OffsetInvalid500,
    FilterAfterPagination, OffsetEchoZero, OffsetEchoNull,
    # status filter
    StatusFilterIgnored, StatusRefusedRejected, UnknownStatusReturnsEverything, StatusDropsMatches,
    StatusCaseInsensitive, UnknownStatusEmpty, UnknownStatus500,
    # list-view fields
    PlaybackUrlFilled, TrackFilled, NullFieldsOmitted, ProgressAsString, ProgressPerMille,
    BadIdPrefix, LocalTime, SucceededWithoutTrackId, PartialTrackOnUnsucceeded,
    FailedWithoutMessage, DuplicateJobs, PageAsHtml,
    # authentication
    NoAuth, MissingCredentials403, UnknownKey403, MissingKeyWrongCode, UnauthorizedCode,
    AuthErrorWrongType, HtmlAuthErrors, NearMissKeyAccepted, MalformedKey500, ValidationBeforeAuth,
    BearerSignatureNotChecked, MalformedToken500, ExpiredTokenAccepted, RevokedKeyAccepted, Bearer500,
    # authorization
    CapabilityNotEnforced, NoCapabilityWrongCode, ForeignOrganizationReadable,
    ForeignOrganization404, UnknownOrganization404,
    # isolation
    OrganizationWideListing, IsolationLostWithStatus,
    # robustness
    UnknownParameter500, UnknownParameterRejected, RepeatedParameter500, HugeOffset500,
    ValidationWithoutEnvelope,
    # error envelope
    EnvelopeMissingMembers, ErrorStatus400, ErrorTimestampNaive, ErrorsAsText, SameTraceId,
    # oracle
    CreatedAtShifted, StaleProgress,
)
VARIATIONS: dict[str, type[Behaviour]] = _by_name(
    ExtraFields, FractionalUtcTimestamps, CharsetContentType, GzipBodies, Validation400,
    DetailedDetails, TieOrderIdAscending, ConnectionClose, AddedLatency, OccasionalRateLimit,
    BearerPreferred, NonMemberInsufficientPermissions, UuidTraceIds, ManyJobs,
)


class UnknownBehaviour(KeyError):
    """No fault or variation has that name; the message suggests close ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        if close:
            hint = f"did you mean {', '.join(close)}?"
        else:
            hint = f"known: {', '.join(sorted(known))}"
        super().__init__(f"unknown behaviour {name!r}; {hint}")

    def __str__(self) -> str:
        return str(self.args[0])


def get_behaviour(name: str) -> Behaviour:
    """A fresh instance of the named fault or variation (``"reference"`` is the correct one)."""
    if name == Behaviour.name:
        return Behaviour()
    behaviour = FAULTS.get(name) or VARIATIONS.get(name)
    if behaviour is None:
        raise UnknownBehaviour(name, [Behaviour.name, *FAULTS, *VARIATIONS])
    return behaviour()
