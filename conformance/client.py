"""HTTP client for the target: GET only, paced, bounded, retries 429s, captures redacted exchanges.

Redaction happens here, where exchanges are captured: nothing downstream (reports,
console, results) ever holds a credential, because no captured value contains one.

So does everything that keeps a run safe on a shared, rate-limited or broken deployment:
only ``GET``; at most ``concurrency`` requests in flight, ``max_rps`` started per second and
``max_requests`` sent in all (retries included; past it a request is refused unsent, see
:class:`BudgetExhausted`); 429s waited out as asked, with bounded retries, and a wait longer
than the suite accepts honoured once for the whole client; the rate limit a target enforces
learnt from its 429s and rate-limit headers and kept to by every thread for the rest of the
run (:class:`RateLimitLearner`); requests straight to the target or through the proxy the
standard variables name (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, read
as httpx reads them); one total deadline per request, decoding included (a
response that trickles in is cut at ``timeout``); at most :data:`BODY_READ_CAP` bytes read of
a body, counted as they come out of the decoder; redirects never followed, so credentials
never reach another host; nothing the deployment sets (cookies, auth challenges) sent back;
and a target that stops answering is given up on after a few requests instead of being
waited for by every check.

Nothing the deployment sends is trusted to be small: its response head is bounded by
httpcore (100 KiB for the status line and every header, ``MAX_INCOMPLETE_EVENT_SIZE``), its
body by :data:`BODY_READ_CAP` before and after decoding, and what an :class:`Exchange` or an
error message keeps of it by :data:`KEPT_HEADERS`, :data:`KEPT_HEADER_CHARS` and
:data:`QUOTED_CHARS`.
"""

from __future__ import annotations

import email.utils
import importlib.util
import ipaddress
import itertools
import json
import math
import os
import random
import re
import shlex
import socket
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

import httpcore
import httpx

from conformance.output import ConsoleStream
from conformance.redaction import Redactor

# The most of one response body the suite reads. A page holds at most 100 jobs, a few tens
# of KiB; past this cap the body is not read further and is judged as not a usable page.
BODY_READ_CAP = 1024 * 1024
BODY_KEEP_CAP = 64 * 1024
# The content codings the suite decodes, and so the only ones it asks for; at most one per body.
ACCEPT_ENCODING = "gzip, deflate"
MAX_RATE_LIMIT_RETRIES = 6
# The longest one Retry-After the suite waits out: a per-minute limit asks for up to a minute.
# A target asking for longer is taken at its word once for the whole client: every request
# until then fails at once (not judged).
MAX_RATE_LIMIT_WAIT_S = 65.0
# A wait longer than this is honoured once, for every thread together; asked again before the
# target answered anything else, it is taken as "rate limited throughout" and not waited again.
LONG_WAIT_S = 10.0
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 8.0
# Requests in a row that got no answer (or ran out of 429 retries) before the client stops
# sending: a target that went away mid-run ends the run quickly instead of timing out per check.
GIVE_UP_AFTER = 3
DEFAULT_CONCURRENCY = 8
# What an Exchange keeps of the response headers, and what a message quotes of anything the
# deployment sent (a header value, a protocol error that echoes the status line).
KEPT_HEADERS = 100
KEPT_HEADER_CHARS = 1024
QUOTED_CHARS = 200


class RequestFailed(Exception):
    """A request got no usable answer. Never a judgement of the deployment: checks end in error."""


class TargetUnreachable(RequestFailed):
    """No answer at all: DNS, refused connection, TLS failure or timeout (or the client gave up)."""


class ResponseIncomplete(RequestFailed):
    """An answer started but broke off: a reset, fewer bytes than announced, or past the deadline."""

    def __init__(self, message: str, *, repeatable: bool) -> None:
        super().__init__(message)
        self.repeatable = repeatable


class RateLimitExhausted(RequestFailed):
    """429 responses kept coming after the bounded retries, or asked for too long a wait."""


class BudgetExhausted(RequestFailed):
    """The run's request budget (``--max-requests``) is spent: the request was not sent."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"request budget ({budget}) spent")
        self.budget = budget


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


_recorders: ContextVar[tuple[list[Exchange], ...]] = ContextVar("recorders", default=())


@contextmanager
def recording() -> Iterator[list[Exchange]]:
    """A list that receives every exchange sent in this context (threads started with a copy
    of it included), whether it got an answer or not."""
    sent: list[Exchange] = []
    token = _recorders.set((*_recorders.get(), sent))
    try:
        yield sent
    finally:
        _recorders.reset(token)


_spending_reserve: ContextVar[bool] = ContextVar("spending_reserve", default=False)


@contextmanager
def spending_reserve() -> Iterator[None]:
    """Requests sent in this context (threads started with a copy of it included) may spend the
    part of the request budget kept back with :meth:`TargetClient.reserve`."""
    token = _spending_reserve.set(True)
    try:
        yield
    finally:
        _spending_reserve.reset(token)


# How deeply a body may nest before the suite refuses to parse it: every parser, validator
# and writer after this point recurses over the parsed value.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEPS = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(content: bytes) -> int:
    """The deepest nesting of arrays and objects in ``content`` (strings skipped)."""
    brackets = _JSON_STRING.sub(b'""', content).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEPS.__getitem__, brackets), initial=0))


@dataclass
class Response:
    """What a check judges: status, headers, raw body and its JSON (when it is JSON)."""

    status: int
    headers: httpx.Headers
    content: bytes
    exchange: Exchange
    # Why the body cannot be judged as JSON whatever it holds (too big, or it could not be
    # decoded); None when it was read whole. The checks meet it through json().
    unreadable: str | None = None
    # When the request started (``time.monotonic()``): what the rate-limit learner measures.
    sent_at: float = field(default=0.0, repr=False)
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
            if self.unreadable is not None:
                self._json_error = self.unreadable
                raise ValueError(self._json_error)
            depth = json_depth(self.content)
            if depth > MAX_JSON_DEPTH:
                self._json_error = (f"body nests {depth} levels deep, more than the {MAX_JSON_DEPTH} the suite "
                                    "parses (a page is 3 deep); it was not parsed")
                raise ValueError(self._json_error)
            try:
                self._json = json.loads(self.content)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
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
    """Spaces request starts ``1/max_rps`` apart and holds them all while the target asked
    to wait (``Retry-After``). Thread-safe: every worker thread shares one pacer."""

    def __init__(self, max_rps: float | None) -> None:
        self._interval = 1.0 / max_rps if max_rps else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)

    def hold(self, seconds: float) -> None:
        """No request starts in the next ``seconds``."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)

    def slow_to(self, rate: float) -> bool:
        """At most ``rate`` starts a second from now on; False when the pace already was that slow."""
        with self._lock:
            if self._interval >= 1.0 / rate:
                return False
            self._interval = 1.0 / rate
            return True


# A pace learnt from the target is kept this far under the rate it allows, so that requests
# arriving in bunches (network jitter, a few in flight at once) stay inside its limit.
PACE_MARGIN = 0.97
# A 429 to a request sent at a pace already learnt: that pace was too fast; at least this much slower.
SLOWER = 0.8
# Answers (not 429) a 429 must follow within one stretch of sending before their count tells a rate.
MIN_SAMPLE = 5
# A pause this long between two request starts ends a stretch of sending: the target's quota
# refilled meanwhile, so what was sent before tells nothing of the rate it allows.
IDLE_GAP_S = 2.0
# Past this share of its quota spent (rate-limit headers), the client spreads what remains.
QUOTA_SPREAD_SHARE = 0.5
# A reset header larger than this is a moment (epoch seconds), not a delay.
_EPOCH_RESET = 10**9
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)")
_LIMIT_HEADERS = ("ratelimit-limit", "x-ratelimit-limit")
_REMAINING_HEADERS = ("ratelimit-remaining", "x-ratelimit-remaining")
_RESET_HEADERS = ("ratelimit-reset", "x-ratelimit-reset")


@dataclass(frozen=True)
class Quota:
    """What a target's rate-limit headers say: requests allowed per window, requests left, and
    seconds until the quota resets. Read from ``X-RateLimit-*``, ``RateLimit-*`` (the IETF
    drafts, ``RateLimit-Policy: 100;w=60`` or ``"default";q=100;w=60`` and
    ``RateLimit: "default";r=50;t=30`` included); None where they say nothing."""

    limit: float | None = None
    remaining: float | None = None
    reset_s: float | None = None
    window_s: float | None = None
    named: str = "RateLimit"  # the header family that said it, for messages

    @classmethod
    def of(cls, headers: httpx.Headers) -> Quota:
        limit_text, limit_name = _first_header(headers, _LIMIT_HEADERS)
        policy = _header(headers, "ratelimit-policy")
        combined = _header(headers, "ratelimit")
        remaining_text, remaining_name = _first_header(headers, _REMAINING_HEADERS)
        reset_text, _ = _first_header(headers, _RESET_HEADERS)
        limit = _leading_number(limit_text) or _parameter(policy, "q") or _leading_number(policy)
        window = _parameter(limit_text, "w") or _parameter(policy, "w")
        remaining = _leading_number(remaining_text)
        reset = _leading_number(reset_text)
        if remaining is None:
            remaining = _parameter(combined, "r")
        if reset is None:
            reset = _parameter(combined, "t")
        if reset is not None and reset > _EPOCH_RESET:
            reset = max(reset - time.time(), 0.0)
        named = "X-RateLimit" if (limit_name or remaining_name).startswith("x-") else "RateLimit"
        return cls(limit or None, remaining, reset, window or None, named)

    @property
    def said(self) -> bool:
        return self.limit is not None or self.remaining is not None

    def rate(self, longest_reset_s: float = 0.0) -> float | None:
        """Requests a second the quota allows: the limit over its window, when the headers name
        the window, else over the longest reset seen (a window lasts at least that long)."""
        window = self.window_s or max(longest_reset_s, self.reset_s or 0.0)
        return self.limit / window if self.limit and window > 0 else None

    def describe(self) -> str:
        parts = [f"{self.named}-Limit: {self.limit:g}" if self.limit is not None else "",
                 f"Remaining: {self.remaining:g}" if self.remaining is not None else "",
                 f"Reset: {self.reset_s:.0f} s" if self.reset_s is not None else "",
                 f"window {self.window_s:g} s" if self.window_s is not None else ""]
        return ", ".join(part for part in parts if part)


def _header(headers: httpx.Headers, name: str) -> str:
    return headers.get(name, "")[:QUOTED_CHARS]


def _first_header(headers: httpx.Headers, names: Iterable[str]) -> tuple[str, str]:
    """The value of the first of ``names`` present, and its name."""
    for name in names:
        if name in headers:
            return _header(headers, name), name
    return "", ""


def _leading_number(text: str) -> float | None:
    match = _NUMBER.match(text)
    return float(match.group(1)) if match else None


def _parameter(text: str, name: str) -> float | None:
    """The number of ``name=`` in a structured header value (``100;w=60``, ``"default";q=100``)."""
    match = re.search(rf"(?:^|[;,\s]){name}\s*=\s*(\d+(?:\.\d+)?)", text)
    return float(match.group(1)) if match else None


class RateLimitLearner:
    """Learns the pace a rate-limited target allows and slows the client's shared pacer to it
    for the rest of the run, for every thread at once.

    A 429 with ``Retry-After`` teaches a rate: the quota its headers name (limit over window),
    else what the target let through in the stretch of sending that ran into the limit
    (answers over the time they took plus the wait asked). A 429 at a pace already learnt
    slows it further. Without any 429, rate-limit headers on ordinary answers are followed
    once half the quota is spent: the named quota's pace is adopted, and what remains is
    spread evenly until the reset (a quota spent to 0 holds every request until then).
    """

    def __init__(self, pacer: Pacer, say: Callable[[str], None]) -> None:
        self._pacer = pacer
        self._say = say
        self._lock = threading.Lock()
        self._since: float | None = None  # when the current stretch of sending began
        self._last_start = 0.0
        self._answered = 0  # answers (not 429) to requests started since then
        self._longest_reset = 0.0
        self._spreading = False
        self.pace: float | None = None  # requests a second learnt from the target

    def started(self) -> float:
        """Note a request start; returns its time (``time.monotonic()``)."""
        now = time.monotonic()
        with self._lock:
            if self._since is None or now - self._last_start > IDLE_GAP_S:
                self._since, self._answered = now, 0
            self._last_start = now
        return now

    def answered(self, response: Response, retry_after: float | None) -> None:
        """Learn from one answer; ``retry_after`` is the wait a 429 asked for (None: none asked)."""
        quota = Quota.of(response.headers)
        with self._lock:
            current = self._since is not None and response.sent_at >= self._since
            self._longest_reset = max(self._longest_reset, quota.reset_s or 0.0)
            if current and response.status != 429:
                self._answered += 1
        if response.status == 429:
            if current and retry_after is not None and 0 < retry_after <= MAX_RATE_LIMIT_WAIT_S:
                self._learn_from_429(quota, retry_after)
        elif quota.said:
            self._follow(quota)

    def _learn_from_429(self, quota: Quota, wait: float) -> None:
        now = time.monotonic()
        with self._lock:
            since, answered = self._since or now, self._answered
            # The stretch that ran into the limit is over: the next one starts once the wait is.
            self._since, self._answered = now + wait, 0
            told = quota.rate(self._longest_reset)
        counted = answered / (now - since + wait) if answered >= MIN_SAMPLE else None
        if self.pace is None:
            rate, why = (told, f"429 with Retry-After: {wait:g} s, {quota.describe()}") if told else (
                counted, f"429 with Retry-After: {wait:g} s after {answered} answers in {now - since:.1f} s")
        else:
            rate = min(counted or math.inf, self.pace * SLOWER)
            why = f"another 429 at {self.pace * PACE_MARGIN:.3g} requests a second"
        if rate:
            self._adopt(rate, why)

    def _follow(self, quota: Quota) -> None:
        """Rate-limit headers on an ordinary answer: past half the quota, pace to it and spread what remains."""
        if quota.limit is None or quota.remaining is None or quota.remaining > quota.limit * QUOTA_SPREAD_SHARE:
            return
        with self._lock:
            told = quota.rate(self._longest_reset) if quota.window_s else None
        if told:
            self._adopt(told, quota.describe())
        reset = quota.reset_s
        if reset is None or reset > MAX_RATE_LIMIT_WAIT_S:
            return
        self._pacer.hold(reset if quota.remaining < 1 else reset / quota.remaining)
        with self._lock:
            first, self._spreading = not self._spreading, True
        if first:
            self._say(f"conformance: the target's rate-limit quota is {quota.remaining:g} of {quota.limit:g} "
                      f"({quota.describe()}): spreading what remains until each reset")

    def _adopt(self, rate: float, why: str) -> None:
        with self._lock:
            if self.pace is not None and rate >= self.pace:
                return
            self.pace = rate
        if self._pacer.slow_to(rate * PACE_MARGIN):
            self._say(f"conformance: the target limits the request rate ({why}): pacing at "
                      f"{rate * PACE_MARGIN:.3g} requests a second from now on")


def retry_after_seconds(value: str | None, attempt: int, rng: random.Random) -> float:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or an HTTP date), else exponential
    backoff with jitter. Not capped: the caller decides whether it is willing to wait that long."""
    asked = parse_retry_after(value)
    if asked is not None:
        return asked
    return min(BACKOFF_BASE_S * 2**attempt, BACKOFF_MAX_S) * (0.5 + rng.random())


# Longer than any form of Retry-After (an IMF-fixdate is 29 characters): not read at all.
_LONGEST_RETRY_AFTER = 64


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds from now, or None when absent or unreadable.

    Accepts delay-seconds and the three HTTP date forms (IMF-fixdate, RFC 850, asctime).
    """
    text = (value or "").strip()
    if not text or len(text) > _LONGEST_RETRY_AFTER:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # asctime dates name no zone; HTTP dates are always GMT
        moment = moment.replace(tzinfo=UTC)
    return max(moment.timestamp() - time.time(), 0.0)


class _Deadline(threading.local):
    """When the current thread's request must be over (``time.monotonic()``), or None."""

    at: float | None = None

    def clamp(self, timeout: float | None, expired: type[Exception]) -> float | None:
        if self.at is None:
            return timeout
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise expired("the request's total deadline passed")
        return remaining if timeout is None else min(timeout, remaining)

    def check(self) -> None:
        """``httpx.ReadTimeout`` once the deadline passed: work between reads (decoding) counts too."""
        if self.at is not None and time.monotonic() >= self.at:
            raise httpx.ReadTimeout("the request's total deadline passed")


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline of the request using it."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(ssl_context, server_hostname,
                                        self._deadline.clamp(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, held to the request's total deadline (httpx only bounds each read)."""

    def __init__(self, deadline: _Deadline) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, self._deadline.clamp(timeout, httpcore.ConnectTimeout),
                                           local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, self._deadline.clamp(timeout, httpcore.ConnectTimeout),
                                                   socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


# -- the route: straight to the target, or through the proxy the environment names ----------

# The proxy schemes httpx knows; SOCKS needs the socksio package (httpx[socks]).
HTTP_PROXY_SCHEMES = ("http", "https")
SOCKS_PROXY_SCHEMES = ("socks5", "socks5h")


@dataclass(frozen=True)
class Route:
    """How requests reach the target: straight (``proxy`` None) or through a proxy, and which
    environment variable chose it."""

    proxy: httpx.Proxy | None = None
    variable: str = ""
    # Why no request can go this way (the proxy the environment names cannot be used), or None.
    unusable: str | None = None

    def describe(self) -> str:
        if self.proxy is None:
            return "straight to the target"
        url = self.proxy.url
        port = f":{url.port}" if url.port else ""
        return f"through the proxy {url.scheme}://{url.host}{port} (from {self.variable})"


def environment_proxies(environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """The proxies the standard variables name, as httpx reads them: for ``http``, ``https``,
    ``all`` and ``no``, the value and the variable it came from. A lowercase variable wins over
    its uppercase twin; ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set (a CGI request
    can set it: httpoxy)."""
    environ = os.environ if environ is None else environ
    found: dict[str, tuple[str, str]] = {}
    for scheme in ("http", "https", "all", "no"):
        for variable in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            if scheme == "http" and variable == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
                continue
            value = environ.get(variable, "").strip()
            if value:
                found[scheme] = (value, variable)
                break
    return found


def proxy_route(url: str, proxies: Mapping[str, tuple[str, str]]) -> Route:
    """The route of requests to ``url``: the proxy for its scheme (else ``all``) unless
    ``no_proxy`` covers its host. A proxy URL httpx could not use either makes every request
    fail, saying so (never a silent straight route past a proxy the network needs)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    chosen = proxies.get(scheme) or proxies.get("all")
    if chosen is None or bypasses_proxy(scheme, host, parts.port, proxies.get("no", ("", ""))[0]):
        return Route()
    value, variable = chosen
    try:
        proxy = httpx.Proxy(value if "://" in value else f"http://{value}")
    except (ValueError, httpx.InvalidURL):
        return Route(None, variable, f"{variable} names a proxy the suite cannot use (its URL must start with "
                                     f"{', '.join(f'{name}://' for name in HTTP_PROXY_SCHEMES + SOCKS_PROXY_SCHEMES)})")
    if proxy.url.scheme in SOCKS_PROXY_SCHEMES and importlib.util.find_spec("socksio") is None:
        return Route(None, variable, f"{variable} names a SOCKS proxy, which needs the socksio package "
                                     "(pip install 'httpx[socks]')")
    return Route(proxy, variable)


def bypasses_proxy(scheme: str, host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (comma-separated) covers the host, as httpx and curl read it:
    ``*`` covers every host; ``example.com`` covers it and its subdomains, ``.example.com``
    only its subdomains; an IP address or network (``10.0.0.0/8``) covers the addresses in it;
    an entry may name a port (``host:8080``) or a scheme (``http://host``)."""
    for entry in (part.strip().lower() for part in no_proxy.split(",")):
        if entry == "*":
            return True
        if entry and _covers(entry, scheme, host, port):
            return True
    return False


def _covers(entry: str, scheme: str, host: str, port: int | None) -> bool:
    wanted_scheme, _, entry = entry.rpartition("://")
    if wanted_scheme and wanted_scheme != scheme:
        return False
    name, wanted_port = entry, None
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", entry)
    if bracketed:
        name, wanted_port = bracketed.group(1), bracketed.group(2)
    elif entry.count(":") == 1:
        name, _, wanted_port = entry.partition(":")
    if wanted_port and port is not None and int(wanted_port) != port:
        return False
    network = _network(name)
    if network is not None:
        address = _network(host.strip("[]"))
        return address is not None and address.num_addresses == 1 and address.network_address in network
    if name.startswith("."):
        return host.endswith(name)
    return host == name or host.endswith(f".{name}")


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


# httpcore's exceptions as httpx names them, the most specific first.
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    """httpcore's exceptions raised as httpx's, the original kept as the cause (failure_cause reads it)."""
    try:
        yield
    except Exception as error:
        mapped = next((to for origin, to in _HTTPX_ERRORS if isinstance(error, origin)), None)
        if mapped is None:
            raise
        raise mapped(str(error)) from error


class _BodyStream(httpx.SyncByteStream):
    """An httpcore response body as httpx reads it, with httpx's exceptions."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _Transport(httpx.BaseTransport):
    """GET requests over httpcore's public API: at most ``concurrency`` connections, every
    socket held to the request's total deadline, straight to the target or through the proxy
    of ``route`` (an HTTP proxy, tunnelling https with CONNECT; SOCKS when socksio is installed).

    Only the proxy's own credentials (``user:password@`` in its URL) go into a
    ``Proxy-Authorization`` header; the request's headers are the request's alone, and behind
    a CONNECT tunnel the proxy never sees them.
    """

    def __init__(self, context: ssl.SSLContext, concurrency: int, deadline: _Deadline, route: Route) -> None:
        self._unusable = route.unusable
        self._pool = _connection_pool(context, concurrency, _DeadlineBackend(deadline), route.proxy)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._unusable is not None:
            raise httpx.ProxyError(self._unusable)
        assert isinstance(request.stream, Iterable)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                             target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        with _as_httpx_errors():
            answer = self._pool.handle_request(core_request)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(answer.status, headers=answer.headers, stream=_BodyStream(answer.stream),
                              extensions=answer.extensions)

    def close(self) -> None:
        self._pool.close()


def _connection_pool(context: ssl.SSLContext, concurrency: int, backend: httpcore.NetworkBackend,
                     proxy: httpx.Proxy | None) -> httpcore.ConnectionPool:
    """httpcore's pool for the route: straight, through an HTTP(S) proxy, or through a SOCKS one."""
    common: dict[str, Any] = {"ssl_context": context, "max_connections": concurrency,
                              "max_keepalive_connections": concurrency,
                              "keepalive_expiry": httpx.Limits().keepalive_expiry, "network_backend": backend}
    if proxy is None:
        return httpcore.ConnectionPool(**common)
    proxy_url = httpcore.URL(scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port,
                             target=proxy.url.raw_path)
    if proxy.url.scheme in HTTP_PROXY_SCHEMES:
        return httpcore.HTTPProxy(proxy_url=proxy_url, proxy_auth=proxy.raw_auth, proxy_headers=proxy.headers.raw,
                                  proxy_ssl_context=proxy.ssl_context, **common)
    return httpcore.SOCKSProxy(proxy_url=proxy_url, proxy_auth=proxy.raw_auth, **common)


TOO_BIG = (f"body is larger than {BODY_READ_CAP // 1024} KiB, the most the suite reads of one response "
           "(conformance.client.BODY_READ_CAP); it was not read further")
# zlib's window bits per coding: +32 reads a gzip or a zlib header (as httpx does), and
# "deflate" is zlib data, or raw deflate from servers that omit the wrapper.
_WBITS = {"gzip": zlib.MAX_WBITS | 32, "x-gzip": zlib.MAX_WBITS | 32, "deflate": zlib.MAX_WBITS}


class _Unreadable(Exception):
    """The body cannot be judged, for the reason given (said as a check reports it)."""


def content_coding(headers: httpx.Headers) -> str | None:
    """The body's one content coding (None: none); :class:`_Unreadable` when the suite cannot undo it.

    One coding at most: a stack (``gzip, gzip``) multiplies what a few bytes inflate to.
    """
    named = ", ".join(headers.get_list("content-encoding"))
    if len(named) > QUOTED_CHARS:
        raise _Unreadable(f"body could not be decoded: its Content-Encoding is {len(named)} characters long, "
                          f"not one of {ACCEPT_ENCODING} (the codings the suite asked for)")
    codings = [part.strip().lower() for part in named.split(",")]
    codings = [coding for coding in codings if coding not in ("", "identity")]
    if len(codings) > 1:
        raise _Unreadable(f"body could not be decoded: Content-Encoding {named!r} stacks {len(codings)} codings; "
                          f"the suite decodes at most one (it asked for Accept-Encoding: {ACCEPT_ENCODING})")
    if codings and codings[0] not in _WBITS:
        raise _Unreadable(f"body could not be decoded: Content-Encoding {codings[0]!r} is not one the suite asked "
                          f"for (Accept-Encoding: {ACCEPT_ENCODING})")
    return codings[0] if codings else None


class _BodyDecoder:
    """Undoes one content coding without ever producing more than asked for, so a body that
    inflates a million-fold costs no more memory or time than the bytes the suite keeps."""

    def __init__(self, coding: str | None) -> None:
        self._coding = coding
        self._zlib = zlib.decompressobj(_WBITS[coding]) if coding else None
        self._fed = False

    def decode(self, data: bytes, most: int) -> bytes:
        """At most ``most`` (1 or more) decoded bytes of ``data``; past them the rest is dropped,
        since the caller stops reading there."""
        if self._zlib is None:
            return data[:most]
        first, self._fed = not self._fed, True
        try:
            return self._zlib.decompress(data, most)
        except zlib.error as error:
            if first and self._coding == "deflate":
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(data, most)
            raise _Unreadable(f"body could not be decoded: its {self._coding} data is corrupt ({error})") from None

    def finish(self) -> None:
        if self._zlib is not None and self._fed and not self._zlib.eof:
            raise _Unreadable(f"body could not be decoded: its {self._coding} data stops before its end")


def ssl_context(verify: bool | str | Path) -> ssl.SSLContext:
    """True: the usual trusted CAs; False: no verification; a path: trust that PEM bundle only.

    Raises ``ssl.SSLError`` or ``OSError`` when the bundle cannot be loaded.
    """
    if isinstance(verify, (str, Path)):
        return ssl.create_default_context(cafile=str(verify))
    return httpx.create_ssl_context(verify=verify)


def failure_cause(error: BaseException, url: str, timeout: float) -> str:
    """Why a request got no answer, as a person would say it: ``connection refused by host:port``."""
    parts = urlsplit(url)
    host = parts.hostname or url
    where = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed for {host}"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verify failed for {host}: {excerpt(str(cause.verify_message))}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {where} failed: {excerpt(str(cause.reason or cause))}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(cause, ConnectionResetError):
            return f"connection reset by {where}"
    if isinstance(error, httpx.ConnectTimeout):
        return f"timed out after {timeout:g} s connecting to {where}"
    if isinstance(error, httpx.TimeoutException):
        return f"timed out after {timeout:g} s waiting for {where} to answer"
    if isinstance(error, httpx.RemoteProtocolError) and "without sending a response" in str(error):
        return f"{where} closed the connection without answering"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"{where} answered with something that is not HTTP: {excerpt(str(error))}"
    return f"{type(error).__name__}: {excerpt(str(error))}"


def _broken_off(error: BaseException) -> str:
    if any(isinstance(cause, ConnectionResetError) for cause in _causes(error)):
        return "connection reset"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the connection closed early"
    return f"{type(error).__name__}: {excerpt(str(error))}"


def excerpt(text: str, limit: int = QUOTED_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _kept_headers(headers: list[tuple[str, str]],
                  redact: Callable[[list[tuple[str, str]]], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """What an exchange keeps of response headers: the first :data:`KEPT_HEADERS`, redacted,
    each cut to :data:`KEPT_HEADER_CHARS`, and a line saying how many more there were."""
    kept = [(excerpt(name, KEPT_HEADER_CHARS), excerpt(value, KEPT_HEADER_CHARS))
            for name, value in redact(headers[:KEPT_HEADERS])]
    if len(headers) > KEPT_HEADERS:
        kept.append(("...", f"{len(headers) - KEPT_HEADERS} more headers, not kept"))
    return kept


def _announced_length(headers: httpx.Headers) -> int | None:
    announced = headers.get("content-length", "")
    return int(announced) if announced.isdigit() and len(announced) <= 20 else None


def credential_flaw(value: str) -> str | None:
    """Why ``value`` cannot be a credential header's value, naming the first offending
    character's kind and place but never the value; None when it can. Keys and tokens are
    visible ASCII (0x21-0x7E): no space, line break, control or non-ASCII character."""
    for index, char in enumerate(value):
        if "!" <= char <= "~":
            continue
        at_end, at_start = not value[index:].strip(), not value[:index + 1].strip()
        where = "at its end" if at_end else "at its start" if at_start else "inside it"
        slip = " (a copy-paste slip?)" if at_end or at_start or char in "\r\n" else ""
        return f"contains {_character_kind(char)} {where}{slip}"
    return None


def _character_kind(char: str) -> str:
    if char in "\r\n":
        return "a line break"
    if char in " \t":
        return "a space" if char == " " else "a tab"
    return "a control character" if char.isascii() else "a non-ASCII character"


def _refuse_unsendable(headers: Mapping[str, str]) -> None:
    """``ValueError`` naming the header, never its value, when a value cannot go on the wire
    (config.validate refuses such credentials before a run; this guards other callers)."""
    for name, value in headers.items():
        if not all(char == "\t" or " " <= char <= "~" for char in value):
            raise ValueError(f"refusing to send a {name} header holding a control or non-ASCII character")


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class _Console:
    """Lines for the person running the suite, on the console as it was when the client was made.

    pytest captures the process's output while checks run; a pace learnt then, in whichever
    thread, must still reach the terminal. So this writes to a duplicate of stdout's file
    descriptor taken now, before any capture, redacted and made visible like every console line.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        try:
            self._file = open(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        except (AttributeError, ValueError, OSError):  # no real stdout (a captured or closed one)
            return
        self._stream = ConsoleStream(self._file, redactor)

    def line(self, text: str) -> None:
        with self._lock:
            if self._file is not None:
                self._stream.write(f"{text}\n")
                self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


Observer = Callable[[Exchange], None]


class TargetClient:
    """GET requests to one deployment's list endpoint, with capture and redaction.

    Thread-safe: requests may be sent from several threads; ``concurrency`` bounds how many
    are in flight at once, ``max_rps`` how many start per second (slower once the target's
    rate limit is learnt) and ``max_requests`` how many are sent in all, retries included.

    ``proxies`` are :func:`environment_proxies` (read from the environment when None; ``{}``
    goes straight to the target). ``say`` prints a line for the person running the suite (the
    pace learnt from the target); by default the console as it was when the client was made.
    """

    def __init__(
        self,
        base_url: str,
        *,
        secrets: Iterable[str] = (),
        timeout: float = 10.0,
        max_rps: float | None = None,
        max_requests: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        verify: bool | str | Path = True,
        transport: httpx.BaseTransport | None = None,
        proxies: Mapping[str, tuple[str, str]] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.route = proxy_route(self.base_url, environment_proxies() if proxies is None else proxies)
        proxy_password = self.route.proxy.auth[1] if self.route.proxy and self.route.proxy.auth else ""
        self.redactor = Redactor([*secrets, *([proxy_password] if proxy_password else [])])
        self.max_rps = max_rps
        self.max_requests = max_requests
        self._pacer = Pacer(max_rps)
        self._console = _Console(self.redactor) if say is None else None
        self.rate_limits = RateLimitLearner(self._pacer, say or self._say_on_console)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._deadline = _Deadline()
        self._rng = random.Random(0)
        self._observers: list[Observer] = []
        self._lock = threading.Lock()
        self.request_count = 0  # requests sent
        self._committed = 0  # requests sent or about to be: what the budget counts
        self._reserved = 0  # the end of the budget only spent inside spending_reserve()
        self._no_answer_in_a_row = 0
        self._exhausted_in_a_row = 0
        self.gave_up: RequestFailed | None = None
        # Until when (time.monotonic()) the target asked, with a 429, not to be sent anything.
        self._rate_limited_until = 0.0
        self._answered_since_long_wait = True
        self._rate_limited_because = ""
        # Requests go to the transport as built here, never through httpx.Client: it never
        # follows redirects, so it needs no redirect handling (which chokes on some Location
        # values), and no cookie jar or auth flow can add what a deployment set to a request.
        self._transport = transport or _Transport(ssl_context(verify), concurrency, self._deadline, self.route)
        self._headers = {"User-Agent": "conformance-suite", "Accept": "application/json",
                         "Accept-Encoding": ACCEPT_ENCODING}
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}

    def close(self) -> None:
        self._transport.close()
        if self._console is not None:
            self._console.close()

    def _say_on_console(self, line: str) -> None:
        if self._console is not None:
            self._console.line(line)

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
        """GET the list endpoint. ``raw_query`` sends a query string exactly as given.

        Never returns a 429: it waits as asked and retries, or raises :class:`RateLimitExhausted`.
        Raises :class:`RequestFailed` whenever no complete answer arrived, and
        :class:`BudgetExhausted`, sending nothing, once ``max_requests`` were sent.
        """
        target = url or self.list_url(organization_id)
        if _origin(target) != _origin(self.base_url):
            raise ValueError(f"refusing to send a request (and its credentials) outside {self.base_url}")
        query = raw_query if raw_query is not None else _encode(params)
        full_url = f"{target}?{query}" if query else target
        headers = {credential.header: credential.value} if credential else {}
        _refuse_unsendable(headers)
        waited = 0.0
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            response = self._answer(full_url, headers, credential)
            asked = parse_retry_after(response.headers.get("retry-after")) if response.status == 429 else None
            self.rate_limits.answered(response, asked)
            if response.status != 429:
                self._answered_since_long_wait = True
                self._settle(exhausted=False)
                return response
            response.exchange.retried = True
            wait = asked if asked is not None else retry_after_seconds(None, attempt, self._rng)
            if wait > MAX_RATE_LIMIT_WAIT_S or (wait > LONG_WAIT_S and not self._answered_since_long_wait):
                raise self._rate_limited_for(wait, response.exchange.url)
            if wait > LONG_WAIT_S:
                self._answered_since_long_wait = False
            if attempt < MAX_RATE_LIMIT_RETRIES:
                self._pacer.hold(wait)
                waited += wait
        raise self._exhausted(f"rate limited: GET {response.exchange.url} still answered 429 after "
                              f"{MAX_RATE_LIMIT_RETRIES} retries over {waited:.1f} s; not judged "
                              "(lower --max-rps, or run when the target is quieter)")

    def _answer(self, url: str, headers: dict[str, str], credential: Credential | None) -> Response:
        """One request, repeated once when its answer broke off in a way a repeat may mend."""
        try:
            return self._send(url, headers, credential)
        except ResponseIncomplete as error:
            if not error.repeatable:
                raise
        return self._send(url, headers, credential)

    def _send(self, url: str, headers: dict[str, str], credential: Credential | None) -> Response:
        self._commit()
        with self._slots:
            try:
                self._pacer.wait()
                self._refuse_unwanted()  # decided here, since a wait for a slot may have outlived the target
            except RequestFailed:
                with self._lock:
                    self._committed -= 1  # not sent after all
                raise
            exchange = Exchange(
                method="GET",
                url=self.redactor.text(url),
                request_headers=self.redactor.headers(headers.items()),
                curl=self._curl(url, credential),
            )
            with self._lock:
                self.request_count += 1
            sent_at = self.rate_limits.started()
            started = time.perf_counter()
            self._deadline.at = time.monotonic() + self.timeout
            try:
                response = self._read(url, headers, exchange)
            except RequestFailed as error:
                exchange.error = self.redactor.text(str(error))
                raise
            finally:
                self._deadline.at = None
                exchange.elapsed_s = time.perf_counter() - started
                for sent in _recorders.get():
                    sent.append(exchange)
                self._notify(exchange)
        response.sent_at = sent_at
        return response

    def reserve(self, requests: int) -> None:
        """Keep the last ``requests`` of the budget for requests sent inside :func:`spending_reserve`
        (the walk that confirms the listing did not change before a failure is reported)."""
        with self._lock:
            self._reserved = max(0, requests)

    def _commit(self) -> None:
        """Count a request about to be sent against the budget, or refuse it (sending nothing)
        once the budget is spent: first, so a refused request waits neither for a slot nor the pace."""
        with self._lock:
            if self.max_requests is not None:
                usable = self.max_requests - (0 if _spending_reserve.get() else self._reserved)
                if self._committed >= usable:
                    raise BudgetExhausted(self.max_requests)
            self._committed += 1

    def announcements(self) -> list[str]:
        """Console lines before the first request: the proxy requests go through (when one does),
        and what bounds the run's requests (when a pace or a budget was given)."""
        route = (f"conformance: requests go {self.route.describe()}" if self.route.proxy else
                 f"conformance: no request can be sent: {self.route.unusable}" if self.route.unusable else None)
        return [line for line in (route, describe_limits(self.max_rps, self.max_requests)) if line]

    def _refuse_unwanted(self) -> None:
        """Fail at once, sending nothing, once the client gave up on the target or while the
        target asked not to be sent anything (a Retry-After longer than the suite waits)."""
        if self.gave_up is not None:
            raise type(self.gave_up)(f"not sent: {self.gave_up}")
        with self._lock:
            limited = time.monotonic() < self._rate_limited_until
            because = self._rate_limited_because
        if limited:
            raise RateLimitExhausted(f"not sent: {because}; not judged")

    def _rate_limited_for(self, seconds: float, url: str) -> RateLimitExhausted:
        """Take the target at its word, once for the whole client: nothing is sent for ``seconds``.
        Not counted towards giving up: requests that were in flight meet the same 429."""
        until = time.time() + min(seconds, _LONGEST_WAIT_NAMED)
        with self._lock:
            self._rate_limited_until = max(self._rate_limited_until, time.monotonic() + seconds)
            why = (f"longer than the {MAX_RATE_LIMIT_WAIT_S:.0f} s the suite waits" if seconds > MAX_RATE_LIMIT_WAIT_S
                   else "again, after the suite had waited once and the target answered nothing else")
            self._rate_limited_because = (
                f"the target is rate limited until {datetime.fromtimestamp(until, UTC):%H:%M:%S} UTC "
                f"(a 429 asked to wait {_seconds(seconds)}, {why})")
        return RateLimitExhausted(self.redactor.text(
            f"rate limited: GET {url} answered 429 asking to wait {_seconds(seconds)}, {why}; not judged"))

    def _read(self, url: str, headers: dict[str, str], exchange: Exchange) -> Response:
        request = httpx.Request("GET", url, headers={**self._headers, **headers}, extensions=self._extensions)
        try:
            answer = self._transport.handle_request(request)
        except httpx.HTTPError as error:  # nothing arrived, not even the status line
            cause = failure_cause(error, url, self.timeout)
            self._count_no_answer(cause)
            raise TargetUnreachable(self.redactor.text(f"{cause} (GET {url})")) from None
        try:
            exchange.status = answer.status_code
            exchange.response_headers = _kept_headers(answer.headers.multi_items(), self.redactor.headers)
            content, unreadable = self._read_body(answer, exchange)
        finally:
            answer.close()  # a body not read to its end closes the connection instead of reusing it
        with self._lock:
            self._no_answer_in_a_row = 0
        exchange.body = self.redactor.text(content[:BODY_KEEP_CAP].decode("utf-8", errors="replace"))
        exchange.body_truncated = unreadable is not None or len(content) > BODY_KEEP_CAP
        return Response(answer.status_code, answer.headers, content, exchange, unreadable)

    def _read_body(self, answer: httpx.Response, exchange: Exchange) -> tuple[bytes, str | None]:
        """The decoded body up to :data:`BODY_READ_CAP`, and why it cannot be judged whole (None
        when it can); :class:`ResponseIncomplete` when it broke off or outlived the deadline.

        Both the bytes received and the bytes decoded stop at the cap, counted as they come.
        """
        body = bytearray()
        received = 0
        try:
            decoder = _BodyDecoder(content_coding(answer.headers))
            for chunk in answer.iter_raw():
                received += len(chunk)
                body += decoder.decode(chunk, BODY_READ_CAP + 1 - len(body))
                self._deadline.check()
                if len(body) > BODY_READ_CAP or received > BODY_READ_CAP:
                    return bytes(body[:BODY_READ_CAP]), TOO_BIG
            decoder.finish()
        except _Unreadable as reason:
            return bytes(body), str(reason)
        except httpx.TransportError as error:
            raise self._incomplete(error, answer, exchange, received) from None
        return bytes(body), None

    def _incomplete(self, error: httpx.TransportError, answer: httpx.Response, exchange: Exchange,
                    received: int) -> ResponseIncomplete:
        timed_out = isinstance(error, httpx.TimeoutException)
        if timed_out:
            self._count_no_answer(f"timed out after {self.timeout:g} s")
        announced = _announced_length(answer.headers)
        size = f"{received} of the {announced} bytes announced" if announced is not None else f"{received} bytes"
        what = (f"the body was still incomplete at the {self.timeout:g} s deadline ({size})" if timed_out
                else f"the body broke off after {size} ({_broken_off(error)})")
        return ResponseIncomplete(self.redactor.text(f"GET {exchange.url} -> {answer.status_code}: {what}; not judged"),
                                  repeatable=not timed_out)

    def _count_no_answer(self, cause: str) -> None:
        with self._lock:
            self._no_answer_in_a_row += 1
            if self._no_answer_in_a_row >= GIVE_UP_AFTER and self.gave_up is None:
                self.gave_up = TargetUnreachable(
                    f"the suite gave up on the target after {self._no_answer_in_a_row} requests in a row "
                    f"got no answer (last: {cause})")

    def _exhausted(self, message: str) -> RateLimitExhausted:
        self._settle(exhausted=True)
        return RateLimitExhausted(self.redactor.text(message))

    def _settle(self, *, exhausted: bool) -> None:
        with self._lock:
            self._exhausted_in_a_row = self._exhausted_in_a_row + 1 if exhausted else 0
            if self._exhausted_in_a_row >= GIVE_UP_AFTER and self.gave_up is None:
                self.gave_up = RateLimitExhausted(
                    f"the suite gave up on the target after {self._exhausted_in_a_row} requests in a row "
                    "stayed rate limited (429) through every retry")

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


def describe_limits(max_rps: float | None, max_requests: int | None) -> str | None:
    """What bounds a run's requests, for the console before the first one is sent: how many it
    sends at most, and how long they take at the pace asked for (None when neither is set)."""
    budget = f"at most {max_requests} requests in all (--max-requests)" if max_requests else ""
    pace = f"at most {max_rps:g} a second (--max-rps)" if max_rps else ""
    if max_requests and max_rps:
        expect = f"sending all {max_requests} takes at least {_duration(max_requests / max_rps)}"
    elif max_requests:
        expect = f"checks needing more are not checked ('request budget ({max_requests})')"
    elif max_rps:
        expect = f"every 100 requests take at least {_duration(100 / max_rps)}"
    else:
        return None
    return f"conformance: requests: {', '.join(part for part in (budget, pace) if part)}; {expect}"


def _duration(seconds: float) -> str:
    """``12 s``, ``3 min 20 s``, ``1 h 5 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.3g} s" if seconds < 10 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min" + (f" {whole % 60} s" if whole % 60 else "")
    return f"{whole // 3600} h" + (f" {whole % 3600 // 60} min" if whole % 3600 // 60 else "")


# A wait past this is named by how long it is, not by when it ends (no clock reaches it).
_LONGEST_WAIT_NAMED = 10**6


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < _LONGEST_WAIT_NAMED else f"more than {_LONGEST_WAIT_NAMED} s"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _encode(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> str:
    if not params:
        return ""
    items = params.items() if isinstance(params, Mapping) else params
    return urlencode([(name, "" if value is None else str(value)) for name, value in items])
