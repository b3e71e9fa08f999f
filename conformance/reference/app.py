"""The reference deployment as a Starlette app over the SQLite database."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from conformance.reference import data
from conformance.reference.behaviour import (
    Behaviour,
    ErrorSpec,
    http_error,
    internal_error,
)

ENDPOINT_PATH = "/v1/music/{organization_id}/generations"

logger = logging.getLogger(__name__)


class RequestLog:
    """Every request the app received, as ``(method, path_with_query)``, in arrival order."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, method: str, target: str) -> None:
        with self._lock:
            self._entries.append((method, target))

    @property
    def entries(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._entries)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._entries)


class RecordAndDelay:
    """ASGI middleware: log each HTTP request, then wait ``latency_ms`` before answering it."""

    def __init__(self, app: ASGIApp, log: RequestLog, latency_ms: float) -> None:
        self.app = app
        self.log = log
        self.latency_s = latency_ms / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.log.record(scope["method"], _request_target(scope))
            if self.latency_s > 0:
                await asyncio.sleep(self.latency_s)
        await self.app(scope, receive, send)


def create_app(
    database_path: Path, behaviour: Behaviour | None = None, *, latency_ms: float = 0.0
) -> Starlette:
    """The endpoint over ``database_path``, answering as ``behaviour`` (default: correctly).

    ``app.state.request_log`` holds the :class:`RequestLog`.
    """
    behaviour = behaviour or Behaviour()
    log = RequestLog()

    def list_generations(request: Request) -> Response:
        try:
            response = _list_generations(request, database_path, behaviour)
        except Exception:
            logger.exception("unexpected error while listing generations")
            response = _error_response(behaviour, internal_error())
        return behaviour.finalize(request, response)

    def routing_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        spec = http_error(exc.status_code, exc.headers)
        return behaviour.finalize(request, _error_response(behaviour, spec))

    def unexpected_error(request: Request, exc: Exception) -> Response:
        # Last resort when a hook itself failed: render with the correct behaviour.
        return _error_response(Behaviour(), internal_error())

    app = Starlette(
        routes=[Route(ENDPOINT_PATH, list_generations, methods=["GET"])],
        middleware=[Middleware(RecordAndDelay, log=log, latency_ms=latency_ms)],
        exception_handlers={HTTPException: routing_error, Exception: unexpected_error},
    )
    # A trailing slash gets the 404 envelope instead of a bare redirect.
    app.router.redirect_slashes = False
    app.state.request_log = log
    return app


def _list_generations(request: Request, database_path: Path, behaviour: Behaviour) -> Response:
    with data.read_only(database_path) as db:
        caller = behaviour.authenticate(request, db)
        if isinstance(caller, ErrorSpec):
            return _error_response(behaviour, caller)
        denial = behaviour.authorize(db, caller)
        if denial is not None:
            return _error_response(behaviour, denial)
        query = behaviour.parse_query(request.query_params)
        if isinstance(query, ErrorSpec):
            return _error_response(behaviour, query)
        rows = behaviour.select_jobs(db, caller, query)
    if isinstance(rows, ErrorSpec):
        return _error_response(behaviour, rows)
    jobs = [behaviour.render_job(row) for row in rows]
    return JSONResponse(behaviour.render_page(jobs, query))


def _error_response(behaviour: Behaviour, spec: ErrorSpec) -> Response:
    status, headers, body = behaviour.render_error(spec)
    return JSONResponse(body, status_code=status, headers=headers)


def _request_target(scope: Scope) -> str:
    """The path and query as the client sent them."""
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path
