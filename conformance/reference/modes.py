"""Modes of the reference deployment that exercise the suite's care for live targets.

- live: the listing changes under the run, as on a shared staging system: every few
  requests a new job appears at the head and the active jobs progress (queued -> running
  -> succeeded). Terminal jobs never change.
- rate limit: beyond N requests a second, ``429`` with ``Retry-After`` (token bucket).
- misbehaviours: answers a client must survive without crashing (not JSON, truncated JSON,
  an oversized body, a wrong Content-Length, a reset mid-body, a slow trickle, a redirect
  to another host, 429 for ever).

Each mode is an outer ASGI layer around the app, so behaviours (faults, variations) and the
app itself stay untouched. Requests a mode answers itself are still recorded in the app's
:class:`~conformance.reference.app.RequestLog`.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance import schemas
from conformance.reference import data
from conformance.reference.app import RequestLog
from conformance.reference.behaviour import Behaviour, ErrorSpec

LIVE_EVERY = 3  # a new job at the head of the listing every this many requests
LIVE_PROGRESS_STEP = 30
OVERSIZED_BYTES = 8 * 1024 * 1024
TRICKLE_PIECE = 16
TRICKLE_INTERVAL_S = 0.05
TRICKLE_MAX_S = 30.0
MISSING_BYTES = 1000  # wrong-content-length announces this many bytes more than it sends

MISBEHAVIOURS = {
    "non-json": "a 200 whose body is an HTML error page",
    "truncated-json": "a 200 whose JSON body stops halfway (Content-Length matches what is sent)",
    "oversized": f"a 200 of {OVERSIZED_BYTES // (1024 * 1024)} MiB, far more than any page",
    "wrong-content-length": f"Content-Length announces {MISSING_BYTES} bytes more than are sent, then the "
                            "connection closes",
    "reset": "half the body, then the connection is reset (TCP RST)",
    "trickle": f"the body arrives {TRICKLE_PIECE} bytes every {TRICKLE_INTERVAL_S} s",
    "redirect": "302 to the same path on another host",
    "always-429": "429 with Retry-After for ever",
}


@dataclass(frozen=True)
class Misbehaviour:
    """How the deployment spoils its answers to requests whose query contains ``when``
    (every request when empty). ``location`` is the other host of a redirect; ``retry_after``
    the header value of always-429."""

    kind: str
    when: str = ""
    location: str = ""
    retry_after: str = "0"

    def __post_init__(self) -> None:
        if self.kind not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {self.kind!r}; known: {', '.join(MISBEHAVIOURS)}")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect needs a location (the other host's base URL)")

    def applies(self, scope: Scope) -> bool:
        return self.when in scope.get("query_string", b"").decode("latin-1")


def wrap(app: ASGIApp, database_path: Path, log: RequestLog, *, live: bool = False,
         rate_limit: float | None = None, misbehaviour: Misbehaviour | None = None) -> ASGIApp:
    """``app`` with the chosen modes around it (``app`` itself when none is chosen)."""
    if not (live or rate_limit or misbehaviour):
        return app
    return Modes(app, log, live=LiveListing(database_path) if live else None,
                 bucket=TokenBucket(rate_limit) if rate_limit else None, misbehaviour=misbehaviour)


class Modes:
    """The outer ASGI layer: rate limit first, then the live listing's tick, then a misbehaviour."""

    def __init__(self, app: ASGIApp, log: RequestLog, *, live: LiveListing | None,
                 bucket: TokenBucket | None, misbehaviour: Misbehaviour | None) -> None:
        self.app = app
        self.log = log
        self.live = live
        self.bucket = bucket
        self.misbehaviour = misbehaviour
        self.rate_limited = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait is not None:
                self.rate_limited += 1
                await self._answer_itself(scope, send, *_too_many_requests(self.bucket.rate, wait))
                return
        if self.live is not None:
            self.live.on_request()
        spoil = self.misbehaviour
        if spoil is None or not spoil.applies(scope):
            await self.app(scope, receive, send)
        elif spoil.kind == "redirect":
            location = f"{spoil.location.rstrip('/')}{_target(scope)}"
            await self._answer_itself(scope, send, 302, {"location": location}, b"")
        elif spoil.kind == "always-429":
            status, headers, body = _too_many_requests(1, 1)
            await self._answer_itself(scope, send, status, {**headers, "retry-after": spoil.retry_after}, body)
        else:
            start, body = await _inner_answer(self.app, scope, receive)
            await SPOILERS[spoil.kind](start, body, receive, send)

    async def _answer_itself(self, scope: Scope, send: Send, status: int, headers: dict[str, str],
                             body: bytes) -> None:
        self.log.record(scope["method"], _target(scope))
        await _respond(send, status, {**headers, "content-length": str(len(body))}, body)


class TokenBucket:
    """``rate`` requests a second, in bursts of at most ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = float(rate)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float | None:
        """None when the request may go ahead, else the seconds until it could."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return (1 - self._tokens) / self.rate


def _too_many_requests(rate: float, wait: float) -> tuple[int, dict[str, str], bytes]:
    spec = ErrorSpec(429, "RATE_LIMIT_EXCEEDED", "Too many requests. Please slow down.",
                     f"more than {rate:g} requests per second", "rate_limit_error")
    status, headers, body = Behaviour().render_error(spec)
    seconds = max(1, math.ceil(wait))
    return status, {**headers, "content-type": "application/json", "retry-after": str(seconds),
                    "x-ratelimit-limit": f"{rate:g}", "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(seconds)}, json.dumps(body).encode()


class LiveListing:
    """Changes the main member's listing every :data:`LIVE_EVERY` requests: the active jobs
    move on (queued -> running -> succeeded) and a new queued job appears at the head."""

    def __init__(self, database_path: Path) -> None:
        self.database_path = database_path
        self.requests = 0
        self.inserted = 0
        self._lock = threading.Lock()

    def on_request(self) -> None:
        with self._lock:
            self.requests += 1
            if self.requests % LIVE_EVERY == 0:
                self.tick()

    def tick(self) -> None:
        with closing(sqlite3.connect(self.database_path, timeout=10)) as db, db:
            user = data.main_user_id(db)
            scope = (user, data.ORGANIZATION_ID)
            running = db.execute("SELECT id, progress FROM jobs WHERE user_id = ? AND org_id = ? AND status = "
                                 "'running'", scope).fetchall()
            for job_id, progress in running:
                if progress + LIVE_PROGRESS_STEP >= 100:
                    db.execute("UPDATE jobs SET status = 'succeeded', progress = 100, result_track_id = ? "
                               "WHERE id = ?", (f"mtrack_{uuid.uuid4().hex[:12]}", job_id))
                else:
                    db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (progress + LIVE_PROGRESS_STEP, job_id))
            db.execute("UPDATE jobs SET status = 'running', progress = 10 WHERE user_id = ? AND org_id = ? "
                       "AND status = 'queued'", scope)
            newest = db.execute("SELECT MAX(created_at) FROM jobs WHERE user_id = ? AND org_id = ?",
                                scope).fetchone()[0] or ""
            created_at = max(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), newest)
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, NULL, NULL, NULL)",
                       (f"mgen_{uuid.uuid4().hex[:12]}", user, data.ORGANIZATION_ID, data.ENGINES[0],
                        schemas.modes()[0], created_at))
        self.inserted += 1


# Misbehaviours that spoil the app's own answer: each gets the answer's start message and body.

Spoiler = Callable[[Message, bytes, Receive, Send], Awaitable[None]]


async def _non_json(start: Message, body: bytes, receive: Receive, send: Send) -> None:
    page = b"<html><head><title>Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    await _respond(send, start["status"], {"content-type": "text/html", "content-length": str(len(page))}, page)


async def _truncated_json(start: Message, body: bytes, receive: Receive, send: Send) -> None:
    half = body[: len(body) // 2]
    await _respond(send, start["status"], _headers(start, len(half)), half)


async def _oversized(start: Message, body: bytes, receive: Receive, send: Send) -> None:
    head = b'{"jobs": [], "padding": "'
    filler = b"x" * (64 * 1024)
    pieces = (OVERSIZED_BYTES - len(head) - 2) // len(filler)
    size = len(head) + pieces * len(filler) + 2
    await send({"type": "http.response.start", "status": 200,
                "headers": _encode({"content-type": "application/json", "content-length": str(size)})})
    disconnected = _watch_disconnect(receive)
    await send({"type": "http.response.body", "body": head, "more_body": True})
    for _ in range(pieces):
        if disconnected.is_set():
            return
        await send({"type": "http.response.body", "body": filler, "more_body": True})
    await send({"type": "http.response.body", "body": b'"}', "more_body": False})


async def _wrong_content_length(start: Message, body: bytes, receive: Receive, send: Send) -> None:
    await send({**start, "headers": _encode(_headers(start, len(body) + MISSING_BYTES))})
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await _hang_up(send, reset=False)


async def _reset(start: Message, body: bytes, receive: Receive, send: Send) -> None:
    await send({**start, "headers": _encode(_headers(start, len(body)))})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    await asyncio.sleep(0.05)  # let the half body reach the client before the reset
    await _hang_up(send, reset=True)


async def _trickle(start: Message, body: bytes, receive: Receive, send: Send) -> None:
    await send({**start, "headers": _encode(_headers(start, len(body)))})
    disconnected = _watch_disconnect(receive)
    deadline = time.monotonic() + TRICKLE_MAX_S
    for offset in range(0, len(body), TRICKLE_PIECE):
        if disconnected.is_set() or time.monotonic() > deadline:
            await _hang_up(send, reset=False)
            return
        last = offset + TRICKLE_PIECE >= len(body)
        await send({"type": "http.response.body", "body": body[offset:offset + TRICKLE_PIECE], "more_body": not last})
        if not last:
            await asyncio.sleep(TRICKLE_INTERVAL_S)


SPOILERS: dict[str, Spoiler] = {
    "non-json": _non_json, "truncated-json": _truncated_json, "oversized": _oversized,
    "wrong-content-length": _wrong_content_length, "reset": _reset, "trickle": _trickle,
}


async def _inner_answer(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
    """The app's whole answer, held back: its start message and its body."""
    messages: list[Message] = []

    async def keep(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, keep)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start, body


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _headers(start: Message, content_length: int) -> dict[str, str]:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in start.get("headers", [])}
    headers["content-length"] = str(content_length)
    return headers


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def _watch_disconnect(receive: Receive) -> asyncio.Event:
    """An event set once the client has gone away."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    task = asyncio.get_running_loop().create_task(watch())
    task.add_done_callback(lambda _: gone.set())
    return gone


async def _hang_up(send: Send, *, reset: bool) -> None:
    """Close the connection mid-response: a FIN, or with ``reset`` a TCP RST.

    ``send`` is uvicorn's own (this layer is the outermost app), whose owner holds the
    transport; without it, raising makes the server drop the connection.
    """
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("misbehaviour: hanging up mid-response")
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    await asyncio.sleep(0.01)  # let uvicorn see the connection is gone before the app returns


def _target(scope: Scope) -> str:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


__all__ = ["LIVE_EVERY", "MISBEHAVIOURS", "LiveListing", "Misbehaviour", "Modes", "TokenBucket",
           "wrap"]
