"""Legitimate variations: deployments that differ from the reference in ways CONTRACT.md
allows. The suite must judge every one of them conformant.

Each is a :class:`Behaviour` subclass overriding one hook, like the faults in ``faults.py``.
"""

from __future__ import annotations

import gzip
import itertools
import random
import sqlite3
import threading
import time
import uuid
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conformance.reference import data
from conformance.reference.behaviour import (
    Behaviour,
    Caller,
    Credentials,
    ErrorSpec,
    Query,
)


class Variation(Behaviour):
    kind = "variation"
    # A variation that needs a particular deployment says so here; the project's tests
    # seed ReferenceServer(jobs=...) with it and pass ``suite_args`` to `conformance run`.
    jobs: ClassVar[int | None] = None
    suite_args: ClassVar[tuple[str, ...]] = ()


class ExtraFields(Variation):
    name = "extra-fields"
    description = "Jobs and the page carry members the documentation does not list."

    def render_job(self, row: sqlite3.Row) -> dict[str, Any]:
        extra = {"object": "music.generation", "updated_at": row["created_at"]}
        return {**super().render_job(row), **extra}

    def render_page(self, jobs: list[dict[str, Any]], query: Query) -> dict[str, Any]:
        return {**super().render_page(jobs, query), "object": "list", "count": len(jobs)}


class FractionalUtcTimestamps(Variation):
    name = "fractional-utc-timestamps"
    description = "Timestamps carry microseconds and a +00:00 designator instead of Z."

    def render_job(self, row: sqlite3.Row) -> dict[str, Any]:
        job = super().render_job(row)
        job["created_at"] = job["created_at"].replace("Z", ".000000+00:00")
        return job

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = super().render_error(spec)
        body["error"]["timestamp"] = body["error"]["timestamp"].replace("Z", ".123456+00:00")
        return status, headers, body


class CharsetContentType(Variation):
    name = "charset-content-type"
    description = "Every response says Content-Type: application/json; charset=utf-8."

    def finalize(self, request: Request, response: Response) -> Response:
        response.headers["content-type"] = "application/json; charset=utf-8"
        return super().finalize(request, response)


class GzipBodies(Variation):
    name = "gzip-bodies"
    description = "Bodies are gzip-compressed whenever the client accepts gzip."

    def finalize(self, request: Request, response: Response) -> Response:
        if "gzip" in request.headers.get("accept-encoding", ""):
            response.body = gzip.compress(response.body)
            response.headers["content-encoding"] = "gzip"
            response.headers["content-length"] = str(len(response.body))
            response.headers["vary"] = "Accept-Encoding"
        return super().finalize(request, response)


class Validation400(Variation):
    name = "validation-400"
    description = "Validation errors are 400 client_error INVALID_REQUEST instead of 422."

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = super().render_error(spec)
        if status == 422:
            body["error"].update(status=400, type="client_error", code="INVALID_REQUEST",
                                 message="Invalid request format or parameters")
            status = 400
        return status, headers, body


class DetailedDetails(Variation):
    name = "detailed-details"
    description = "Errors explain themselves at length in details (FastAPI-style error list)."

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = super().render_error(spec)
        error = body["error"]
        error["code"] = "INVALID_FIELD_VALUE" if status == 422 else error["code"]
        error["details"] = {
            **error["details"],
            "errors": [{"loc": ["query", error["details"].get("field", "")],
                        "msg": error["system_message"], "type": error["type"]}],
            "documentation_url": "https://docs.reference.invalid/errors#" + error["code"].lower(),
            "request": {"method": "GET", "path": "/v1/music/.../generations"},
        }
        return status, headers, body


class TieOrderIdAscending(Variation):
    name = "tie-order-id-ascending"
    description = "Jobs sharing created_at come in ascending id order (the reference: descending)."

    def select_jobs(
        self, db: sqlite3.Connection, caller: Caller, query: Query
    ) -> list[sqlite3.Row] | ErrorSpec:
        return data.fetch_jobs(
            db, user_id=caller.user_id, organization_id=caller.organization_id,
            status=query.status, limit=query.limit, offset=query.offset,
            order_by="created_at DESC, id ASC",
        )


class ConnectionClose(Variation):
    name = "connection-close"
    description = "Every response says Connection: close, so each request opens a new connection."

    def finalize(self, request: Request, response: Response) -> Response:
        response.headers["connection"] = "close"
        return super().finalize(request, response)


class AddedLatency(Variation):
    name = "added-latency"
    description = "Every response is delayed by 1-5 ms, as across a real network."

    def __init__(self) -> None:
        self._rng = random.Random(0)
        self._lock = threading.Lock()

    def finalize(self, request: Request, response: Response) -> Response:
        with self._lock:
            delay = self._rng.uniform(0.001, 0.005)
        time.sleep(delay)  # the endpoint runs in Starlette's thread pool, so sleeping is fine
        return super().finalize(request, response)


class OccasionalRateLimit(Variation):
    name = "occasional-429"
    description = "Every 150th request gets 429 rate_limit_error with Retry-After: 1."

    EVERY: ClassVar[int] = 150

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def finalize(self, request: Request, response: Response) -> Response:
        with self._lock:
            number = next(self._counter)
        if number % self.EVERY == 0:
            spec = ErrorSpec(429, "RATE_LIMIT_EXCEEDED", "Too many requests. Please slow down.",
                             "Request budget of the key exhausted", "rate_limit_error",
                             headers={"Retry-After": "1", "X-RateLimit-Remaining": "0"})
            status, headers, body = self.render_error(spec)
            response = JSONResponse(body, status_code=status, headers=headers)
        return super().finalize(request, response)


class BearerPreferred(Variation):
    name = "bearer-preferred"
    description = ("Bearer tokens are accepted and read before X-API-Key; 401s carry "
                   "WWW-Authenticate.")

    def credentials(self, request: Request) -> Credentials | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer":
            return Credentials("bearer", token)
        api_key = request.headers.get("x-api-key")
        return None if api_key is None else Credentials("api_key", api_key)

    def render_error(self, spec: ErrorSpec) -> tuple[int, dict[str, str], dict[str, Any]]:
        status, headers, body = super().render_error(spec)
        if status == 401:
            headers = {**headers, "WWW-Authenticate": 'Bearer realm="api", ApiKey header="X-API-Key"'}
        return status, headers, body


class NonMemberInsufficientPermissions(Variation):
    name = "non-member-insufficient-permissions"
    description = "A non-member gets 403 INSUFFICIENT_PERMISSIONS (a convention the provider uses)."

    def authorize(self, db: sqlite3.Connection, caller: Caller) -> ErrorSpec | None:
        denial = super().authorize(db, caller)
        if denial is not None and denial.code == "ORGANIZATION_ACCESS_DENIED":
            return ErrorSpec(403, "INSUFFICIENT_PERMISSIONS", "You do not have permission to access "
                             "this resource.", "Not a member of the organization", "authorization_error")
        return denial


class UuidTraceIds(Variation):
    name = "uuid-trace-ids"
    description = "trace_id values are bare UUIDs rather than req_-prefixed ids."

    def new_trace_id(self) -> str:
        return str(uuid.uuid4())


class ManyJobs(Variation):
    name = "many-jobs"
    description = ("A caller with 3000 jobs (served with --jobs 3000), walked whole with --max-listing "
                   "4000 while the other checks keep to their request budgets.")
    jobs = 3000
    suite_args = ("--max-listing", "4000")
