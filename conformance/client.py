"""HTTP client for the target: GET only, paced, retries 429s, captures redacted exchanges.

Redaction happens here, where exchanges are captured: nothing downstream (reports,
console, results) ever holds a credential, because no captured value contains one.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

SENSITIVE_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})
REDACTED = "***"
BODY_READ_CAP = 4 * 1024 * 1024
BODY_KEEP_CAP = 64 * 1024
MAX_RATE_LIMIT_RETRIES = 6
MAX_RATE_LIMIT_WAIT_S = 60.0


class TargetUnreachable(Exception):
    """The target could not be reached: DNS, refused connection, TLS failure or timeout."""


class RateLimitExhausted(Exception):
    """429 responses kept coming after the bounded retries."""


@dataclass(frozen=True)
class Credential:
    """How a request authenticates: one header, and how a person would write it in a shell.

    ``shell`` never holds the secret: it names the environment variable (``$FREDDY_API_KEY``)
    or a bash expansion of it (``${FREDDY_API_KEY%?}``).
    """

    header: str
    value: str = field(repr=False)
    shell: str = ""

    @classmethod
    def api_key(cls, key: str, variable: str) -> Credential:
        return cls("X-API-Key", key, f"${variable}")

    @classmethod
    def bearer(cls, token: str, variable: str) -> Credential:
        return cls("Authorization", f"Bearer {token}", f"Bearer ${variable}")

    @classmethod
    def literal_api_key(cls, key: str) -> Credential:
        """A made-up key that is not a secret (unknown, empty, malformed): shown as is."""
        return cls("X-API-Key", key, re.sub(r'([\\"$`])', r"\\\1", key))


class Redactor:
    """Replaces every occurrence of a secret (and of its near-miss stems) with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        needles: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            needles.add(secret)
            if len(secret) >= 8:
                needles.add(secret[:-1])  # the stem that truncated and changed keys share
        self._needles = sorted(needles, key=len, reverse=True)

    def text(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, REDACTED)
        return text

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            (name, REDACTED if name.lower() in SENSITIVE_HEADERS else self.text(value))
            for name, value in headers
        ]


@dataclass
class Exchange:
    """One request and its response, as captured: already redacted, body capped."""

    method: str
    url: str
    request_headers: list[tuple[str, str]]
    curl: str
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    body_truncated: bool = False
    elapsed_s: float = 0.0
    error: str | None = None
    retried: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "url": self.url, "status": self.status,
            "request_headers": self.request_headers, "response_headers": self.response_headers,
            "body": self.body, "body_truncated": self.body_truncated,
            "elapsed_s": round(self.elapsed_s, 4), "error": self.error,
            "retried": self.retried, "curl": self.curl,
        }


@dataclass
class Response:
    """What a check judges: status, headers, raw body and its JSON (when it is JSON)."""

    status: int
    headers: httpx.Headers
    content: bytes
    exchange: Exchange
    oversized: bool = False
    _json: Any = field(default=None, repr=False)
    _json_error: str | None = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        """The parsed body; raises ``ValueError`` with a readable message when it is not JSON."""
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.content)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                self._json_error = f"body is not JSON ({error})"
        if self._json_error:
            raise ValueError(self._json_error)
        return self._json

    def is_json(self) -> bool:
        try:
            self.json()
        except ValueError:
            return False
        return True

    @property
    def curl(self) -> str:
        return self.exchange.curl


class Pacer:
    """Spaces requests so that at most ``max_rps`` start in any second (thread-safe)."""

    def __init__(self, max_rps: float | None) -> None:
        self._interval = 1.0 / max_rps if max_rps else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


def retry_after_seconds(value: str | None, attempt: int, rng: random.Random) -> float:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP date), else backoff."""
    if value:
        value = value.strip()
        if value.isdigit():
            return min(float(value), MAX_RATE_LIMIT_WAIT_S)
        parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
        if parsed is not None:
            return min(max(parsed.timestamp() - time.time(), 0.0), MAX_RATE_LIMIT_WAIT_S)
    return min(0.25 * 2**attempt, 8.0) * (0.5 + rng.random())


Observer = Callable[[Exchange], None]


class TargetClient:
    """GET requests to one deployment's list endpoint, with capture and redaction."""

    def __init__(
        self,
        base_url: str,
        *,
        secrets: Iterable[str] = (),
        timeout: float = 10.0,
        max_rps: float | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.redactor = Redactor(secrets)
        self._pacer = Pacer(max_rps)
        self._rng = random.Random(0)
        self._observers: list[Observer] = []
        self._count_lock = threading.Lock()
        self.request_count = 0
        self._http = httpx.Client(
            timeout=timeout, follow_redirects=False, verify=verify, transport=transport,
            headers={"User-Agent": "conformance-suite", "Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TargetClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer`` with every captured exchange (the results model listens here)."""
        self._observers.append(observer)

    def list_url(self, organization_id: str) -> str:
        return f"{self.base_url}/v1/music/{organization_id}/generations"

    def get(
        self,
        organization_id: str,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        *,
        credential: Credential | None,
        raw_query: str | None = None,
        url: str | None = None,
    ) -> Response:
        """GET the list endpoint. ``raw_query`` sends a query string exactly as given."""
        target = url or self.list_url(organization_id)
        query = raw_query if raw_query is not None else _encode(params)
        full_url = f"{target}?{query}" if query else target
        headers = {credential.header: credential.value} if credential else {}
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            response = self._send(full_url, headers, credential)
            if response.status != 429:
                return response
            response.exchange.retried = True
            time.sleep(retry_after_seconds(response.headers.get("retry-after"), attempt, self._rng))
        raise RateLimitExhausted(
            f"still rate limited (429) after {MAX_RATE_LIMIT_RETRIES} retries: {response.exchange.url}"
        )

    def _send(self, url: str, headers: dict[str, str], credential: Credential | None) -> Response:
        self._pacer.wait()
        with self._count_lock:
            self.request_count += 1
        exchange = Exchange(
            method="GET",
            url=self.redactor.text(url),
            request_headers=self.redactor.headers(headers.items()),
            curl=self._curl(url, credential),
        )
        started = time.perf_counter()
        try:
            response = self._read(url, headers, exchange)
        except httpx.TransportError as error:
            exchange.error = self.redactor.text(f"{type(error).__name__}: {error}")
            exchange.elapsed_s = time.perf_counter() - started
            self._notify(exchange)
            raise TargetUnreachable(exchange.error) from None
        exchange.elapsed_s = time.perf_counter() - started
        self._notify(exchange)
        return response

    def _read(self, url: str, headers: dict[str, str], exchange: Exchange) -> Response:
        with self._http.stream("GET", url, headers=headers) as streamed:
            chunks: list[bytes] = []
            size = 0
            oversized = False
            for chunk in streamed.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > BODY_READ_CAP:
                    oversized = True
                    break
            content = b"".join(chunks)
        exchange.status = streamed.status_code
        exchange.response_headers = self.redactor.headers(streamed.headers.multi_items())
        text = content[:BODY_KEEP_CAP].decode("utf-8", errors="replace")
        exchange.body = self.redactor.text(text)
        exchange.body_truncated = oversized or len(content) > BODY_KEEP_CAP
        return Response(streamed.status_code, streamed.headers, content, exchange, oversized)

    def _notify(self, exchange: Exchange) -> None:
        for observer in self._observers:
            observer(exchange)

    def _curl(self, url: str, credential: Credential | None) -> str:
        parts = ["curl", "-sS", "-i", shlex.quote(self.redactor.text(url))]
        if credential is not None:
            # Double quotes so the shell expands $FREDDY_API_KEY; the value is never written.
            shell = credential.shell
            parts += ["-H", f'"{credential.header}: {shell}"' if shell else f'"{credential.header};"']
        return " ".join(parts)


def _encode(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> str:
    if not params:
        return ""
    items = params.items() if isinstance(params, Mapping) else params
    return urlencode([(name, "" if value is None else str(value)) for name, value in items])
