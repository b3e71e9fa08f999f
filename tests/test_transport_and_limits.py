"""The client's transport, the rate limits it learns and the request budget it keeps (issue 14).

- Transport: requests go over httpcore's public API, straight to the target or through the
  proxy the standard variables name (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), with the
  request's total deadline either way. A forward proxy on loopback (below) counts what it sees.
- Rate limits: a target that answers 429 (with Retry-After, with or without rate-limit
  headers) is paced to for the rest of the run, by every thread together.
- Budget: ``--max-requests N`` caps the requests sent, retries included; what it leaves
  unchecked is ``not_checked`` "request budget (N)", never passed, never an error.

Every server here listens on 127.0.0.1 and is stopped by the test that started it. Time bounds
are generous (five times a quiet machine's need or more), except the pace itself, which is what
a rate-limit test measures.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import math
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx
import pytest

from conformance.client import (
    BudgetExhausted,
    Credential,
    Quota,
    TargetClient,
    TargetUnreachable,
    bypasses_proxy,
    describe_limits,
    environment_proxies,
    proxy_route,
)
from conformance.reference import ReferenceServer
from conformance.reference.app import RequestLog
from conformance.reference.faults import FAULTS
from conformance.results import NOTHING_TO_JUDGE
from conftest import PROXY_VARIABLES, SuiteRun, clean_env

RUN_LIMIT_S = 180  # one CLI run
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailers",
                        "transfer-encoding", "upgrade"})
EMPTY_PAGE = b'{"jobs": [], "limit": 50, "offset": 0}'


pytestmark = pytest.mark.usefixtures("hard_limit")


def without_proxies(env: dict[str, str]) -> dict[str, str]:
    """``env`` without any proxy variable the machine running the tests may have set."""
    return {name: value for name, value in env.items() if name.lower() not in PROXY_VARIABLES}


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., tuple[SuiteRun, float]]:
    """``conformance run`` in a subprocess: what it left behind, and how long it took. Proxy
    variables come only from ``env``; ``server`` points the suite at a reference deployment."""
    counter = iter(range(1000))

    def run(*args: str, server: ReferenceServer | None = None, env: dict[str, str] | None = None,
            limit: float = RUN_LIMIT_S) -> tuple[SuiteRun, float]:
        report_dir = tmp_path / f"reports-{next(counter)}"
        settings = server.suite_env(tmp_path) if server is not None else {}
        started = time.monotonic()
        try:
            completed = subprocess.run(
                [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir), *args],
                env={**without_proxies(clean_env(settings)), **(env or {})}, cwd=tmp_path, capture_output=True,
                text=True, timeout=limit, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"conformance run was still going after {limit:g} s")
        seconds = time.monotonic() - started
        run = SuiteRun(completed.returncode, completed.stdout, completed.stderr, report_dir)
        assert "Traceback" not in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr[-3000:]
        return run, seconds

    return run


def tail(run: SuiteRun) -> str:
    return run.stdout[-2500:] + run.stderr[-2500:]


# -- a forward proxy on loopback: absolute-form GETs forwarded, CONNECT tunnelled ---------------


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]


@dataclass
class ForwardProxy:
    """An HTTP forward proxy: forwards ``GET http://host:port/...`` to that host and tunnels
    ``CONNECT host:port``, recording every request line and its headers."""

    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ForwardProxy:
        handler = type("Handler", (_ProxyHandler,), {"owner": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def note(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        with self._lock:
            self.seen.append(Seen(method, target, tuple(headers)))


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client closing its connection is no news
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: ForwardProxy

    def do_GET(self) -> None:
        self.owner.note("GET", self.path, list(self.headers.items()))
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self.send_error(400, "a forward proxy wants an absolute-form target")
            return
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        try:
            headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
            upstream.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length", "date", "server"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        self.owner.note("CONNECT", self.path, list(self.headers.items()))
        host, _, port = self.path.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=30) as remote:
            self.send_response(200, "Connection established")
            self.end_headers()
            _pipe(self.connection, remote)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def _pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes (or both stay quiet for 30 s)."""
    with selectors.DefaultSelector() as selector:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        while True:
            ready = selector.select(timeout=30)
            if not ready:
                return
            for key, _ in ready:
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    forward = ForwardProxy().start()
    yield forward
    forward.stop()


def credentials_elsewhere(seen: list[Seen], secrets: list[str]) -> list[str]:
    """Every header the proxy saw that carries one of ``secrets`` although it is not the
    request's own credential header (X-API-Key, Authorization)."""
    return [f"{request.method} {request.target}: {name}" for request in seen for name, value in request.headers
            if name.lower() not in ("x-api-key", "authorization") and any(secret in value for secret in secrets)]


# -- 1. the transport: proxies as httpx reads them ---------------------------------------------


def test_a_run_through_an_http_proxy_gets_its_verdict_and_no_credential_leaks(cli, reference, proxy, tmp_path):
    server = reference()
    secrets = [value for name, value in server.suite_env(tmp_path).items() if "KEY" in name or "TOKEN" in name]
    run, seconds = cli(server=server, env={"HTTP_PROXY": f"http://proxy-user:proxy-pass-Zq4v8TnS@"
                                                         f"{proxy.url.removeprefix('http://')}"})
    forwarded = [request for request in proxy.seen if request.method == "GET"]
    print(f"through the proxy: {len(forwarded)} requests forwarded of {run.results['requests']} sent, {seconds:.1f} s")
    assert run.exit_code == 0 and run.verdict == "conformant", tail(run)
    assert len(forwarded) == run.results["requests"] == server.request_count
    assert all(request.target.startswith(server.base_url) for request in forwarded), forwarded[:3]
    assert any(line.startswith("conformance: requests go through the proxy http://127.0.0.1:") and "HTTP_PROXY" in line
               for line in run.stdout.splitlines()), run.stdout[:2000]
    assert credentials_elsewhere(proxy.seen, secrets) == []
    authorizations = {value for request in proxy.seen for name, value in request.headers
                      if name.lower() == "proxy-authorization"}
    assert authorizations == {"Basic " + base64.b64encode(b"proxy-user:proxy-pass-Zq4v8TnS").decode()}
    everything = run.stdout + run.stderr + (run.report_dir / "results.json").read_text()
    assert "proxy-pass-Zq4v8TnS" not in everything and "Zq4v8TnS" not in everything


def test_no_proxy_covering_the_host_goes_straight_to_it(cli, reference, proxy):
    server = reference()
    run, _ = cli(server=server,
                 env={"HTTP_PROXY": proxy.url, "ALL_PROXY": proxy.url, "NO_PROXY": "example.com, 127.0.0.1"})
    assert run.exit_code == 0 and run.verdict == "conformant", tail(run)
    assert proxy.seen == [], f"{len(proxy.seen)} requests went through the proxy"
    assert "through the proxy" not in run.stdout


def test_https_goes_through_a_connect_tunnel_the_proxy_cannot_read(reference, proxy, certificate):
    cert, key = certificate
    server = reference(ssl_certfile=cert, ssl_keyfile=key)
    secret = server.fixture.api_key
    with TargetClient(server.base_url, verify=cert, proxies=environment_proxies({"HTTPS_PROXY": proxy.url}),
                      secrets=[secret]) as client:
        assert client.route.variable == "HTTPS_PROXY"
        for _ in range(3):
            response = client.get(server.fixture.organization_id, {"limit": 1},
                                  credential=Credential.api_key(secret, "FREDDY_API_KEY"))
            assert response.status == 200
    assert [request.method for request in proxy.seen] == ["CONNECT"], "one tunnel, reused"
    assert proxy.seen[0].target == f"127.0.0.1:{urlsplit(server.base_url).port}"
    assert all(secret not in value for _, value in proxy.seen[0].headers)
    assert server.request_count == 3


def test_a_proxy_the_suite_cannot_use_fails_every_request_naming_the_variable():
    broken = environment_proxies({"ALL_PROXY": "ftp://127.0.0.1:1"})
    with TargetClient("http://127.0.0.1:1", proxies=broken) as client:
        said = ("conformance: no request can be sent: ALL_PROXY names a proxy the suite cannot use (its URL must "
                "start with http://, https://, socks5://, socks5h://)")
        assert client.announcements() == [said]
        with pytest.raises(TargetUnreachable, match="ALL_PROXY names a proxy the suite cannot use"):
            client.get("org_x", credential=None)


def test_the_total_deadline_holds_through_a_proxy(proxy):
    """The proxy forwards to a server that never answers: the request ends at its deadline."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        target = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with TargetClient(target, timeout=0.5, proxies=environment_proxies({"HTTP_PROXY": proxy.url})) as client:
            started = time.monotonic()
            with pytest.raises(TargetUnreachable, match=r"^timed out after 0\.5 s"):
                client.get("org_x", credential=None)
            assert time.monotonic() - started < 0.5 + 2.5
    finally:
        listener.close()


@pytest.mark.parametrize("no_proxy, host, port, covered", [
    ("*", "api.example.com", None, True),
    ("example.com", "example.com", None, True),
    ("example.com", "api.example.com", None, True),
    ("example.com", "wwwexample.com", None, False),
    (".example.com", "example.com", None, False),
    (".example.com", "api.example.com", None, True),
    ("127.0.0.1", "127.0.0.1", 8000, True),
    ("10.0.0.0/8", "10.2.3.4", None, True),
    ("10.0.0.0/8", "11.2.3.4", None, False),
    ("::1", "::1", None, True),
    ("[::1]:8000", "::1", 8000, True),
    ("localhost:8000", "localhost", 9000, False),
    ("localhost:8000", "localhost", 8000, True),
    ("https://api.example.com", "api.example.com", None, False),  # only for https
    (" other.org , api.example.com ", "api.example.com", None, True),
    ("", "api.example.com", None, False),
])
def test_no_proxy_is_read_as_httpx_and_curl_read_it(no_proxy, host, port, covered):
    assert bypasses_proxy("http", host, port, no_proxy) is covered


def test_proxy_variables_are_read_as_httpx_reads_them():
    assert environment_proxies({"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:1"}) == {
        "http": ("http://lower:1", "http_proxy")}
    assert environment_proxies({"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}) == {}  # httpoxy
    proxies = environment_proxies({"HTTPS_PROXY": "proxy.internal:3128", "ALL_PROXY": "http://all:1"})
    assert proxy_route("https://api.example.com", proxies).variable == "HTTPS_PROXY"
    assert str(proxy_route("https://api.example.com", proxies).proxy.url) == "http://proxy.internal:3128"
    assert proxy_route("http://api.example.com", proxies).variable == "ALL_PROXY"
    assert proxy_route("http://api.example.com", {}).proxy is None


# -- 2. rate limits: learnt on the first 429, for the whole run -------------------------------

LIMIT = 20  # requests a second the reference allows


@pytest.fixture
def arrivals(monkeypatch) -> list[float]:
    """When each request reached a reference deployment of this process (``time.monotonic()``)."""
    seen: list[float] = []
    record = RequestLog.record

    def timed(log: RequestLog, method: str, target: str) -> None:
        seen.append(time.monotonic())
        record(log, method, target)

    monkeypatch.setattr(RequestLog, "record", timed)
    return seen


def test_a_rate_limited_target_is_paced_to_and_the_run_gets_its_verdict(cli, reference, arrivals):
    server = reference(rate_limit=LIMIT)
    run, seconds = cli(server=server)
    requests, limited = run.results["requests"], server.modes.rate_limited
    bound = requests / LIMIT
    span = arrivals[-1] - arrivals[0]  # what pacing decides: from the first request to the last
    learnt = [line for line in run.stdout.splitlines() if "pacing at" in line]
    print(f"rate limit {LIMIT}/s: {requests} requests, {limited} answered 429, {seconds:.1f} s in all, "
          f"{span:.1f} s from the first request to the last ({span / bound:.2f} x requests/limit); {learnt}")
    assert run.exit_code == 0 and run.verdict == "conformant", tail(run)
    assert not run.outcomes("error")
    assert 0 < limited <= 20, "the run never met the limit, or kept running into it"
    assert learnt and learnt[0].startswith("conformance: the target limits the request rate (429 with Retry-After: 1 s")
    assert len(learnt) <= 3
    # 1.1 x requests/limit, plus the one wait the first 429 asks for (1 s) and a second's slack;
    # the run as a whole adds starting Python and the reference, collecting, and writing reports.
    assert span <= 1.1 * bound + 2, f"{span:.1f} s of requests for {requests} requests at {LIMIT} a second"
    assert seconds <= 1.1 * bound + 12, f"{seconds:.1f} s for {requests} requests at {LIMIT} a second"


def test_under_plain_pytest_the_learnt_pace_reaches_the_terminal(reference, tmp_path):
    # pytest captures the process's output while the plan fetches: the line is held, then printed.
    from conformance.cli import CHECKS_DIR

    server = reference(rate_limit=LIMIT)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", str(CHECKS_DIR), "-q", "-p", "no:cacheprovider", "--report-dir",
         str(tmp_path / "r"), "-k", "test_auth or test_limit"],
        env=without_proxies(clean_env(server.suite_env(tmp_path))), cwd=tmp_path, capture_output=True, text=True,
        timeout=RUN_LIMIT_S, stdin=subprocess.DEVNULL, check=False)
    learnt = [line for line in completed.stdout.splitlines() if "pacing at" in line]
    assert completed.returncode == 0 and server.modes.rate_limited, completed.stdout[-3000:] + completed.stderr[-2000:]
    assert learnt and learnt[0].startswith("conformance: the target limits the request rate"), completed.stdout[-3000:]


class FixedWindowLimiter:
    """A target allowing ``limit`` requests per fixed window of ``window_s`` seconds, answering
    429 with Retry-After (whole seconds to the window's end) beyond it, and rate-limit headers
    on every answer when ``headers``: a per-minute limit, scaled down to seconds."""

    def __init__(self, limit: int, window_s: float, *, headers: bool) -> None:
        self.limit, self.window_s, self.headers = limit, window_s, headers
        self.answered = self.limited = 0
        self._lock = threading.Lock()
        self._origin = time.monotonic()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, headers = owner.decide()
                body = EMPTY_PAGE if status == 200 else b'{"error": {"code": "RATE_LIMITED"}}'
                self.send_response(status)
                for name, value in (("Content-Type", "application/json"), *headers,
                                    ("Content-Length", str(len(body)))):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._window, self._used = -1, 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def decide(self) -> tuple[int, list[tuple[str, str]]]:
        with self._lock:
            elapsed = time.monotonic() - self._origin
            window = int(elapsed // self.window_s)
            if window != self._window:
                self._window, self._used = window, 0
            reset = (window + 1) * self.window_s - elapsed
            allowed = self._used < self.limit
            self._used += allowed
            self.answered += allowed
            self.limited += not allowed
            remaining = self.limit - self._used
        told = [("X-RateLimit-Limit", str(self.limit)), ("X-RateLimit-Remaining", str(remaining)),
                ("X-RateLimit-Reset", str(math.ceil(reset)))] if self.headers else []
        return (200, told) if allowed else (429, [("Retry-After", str(math.ceil(reset))), *told])

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.parametrize("headers", [False, True], ids=["retry-after-only", "x-ratelimit-headers"])
def test_a_fixed_window_limit_is_learnt_by_every_thread_together(headers):
    """40 requests a 4 s window (10 a second), 100 requests from 8 threads: all answered, in
    about requests/limit, with few 429s, whether the target says its quota or only Retry-After."""
    said: list[str] = []
    with FixedWindowLimiter(40, 4.0, headers=headers) as target, \
            TargetClient(target.url, proxies={}, say=said.append) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: client.get("org_x", credential=None).status, range(100)))
        seconds = time.monotonic() - started
    print(f"fixed window ({'headers' if headers else 'Retry-After only'}): {target.answered} answered, "
          f"{target.limited} 429s, {seconds:.1f} s; {said}")
    assert statuses == [200] * 100
    assert target.limited <= 16, f"{target.limited} requests ran into the limit"
    assert said, "the client said nothing of the limit it met"
    # 100 requests at 10 a second: the first 40 in the first window, the rest paced.
    assert seconds <= 1.1 * 100 / 10 + 3, f"{seconds:.1f} s"


def test_a_retry_after_of_zero_teaches_no_pace():
    """A 429 asking for no wait is not a rate limit the client could pace to."""
    answers = iter([429, 429] + [200] * 20)

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, headers={"Retry-After": "0", "X-RateLimit-Limit": "1",
                                               "X-RateLimit-Reset": "1"}, stream=httpx.ByteStream(EMPTY_PAGE))

    with TargetClient("http://127.0.0.1:1", transport=httpx.MockTransport(handler), say=print) as client:
        for _ in range(10):
            client.get("org_x", credential=None)
        assert client.rate_limits.pace is None


@pytest.mark.parametrize("headers, limit, remaining, reset, window, rate", [
    ({"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}, 20, 0, 1, None, 20),
    ({"RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "7", "RateLimit-Reset": "12"},
     100, 7, 12, 60, 100 / 60),
    ({"RateLimit-Policy": "10;w=1", "RateLimit-Remaining": "3"}, 10, 3, None, 1, 10),
    ({"RateLimit-Policy": '"default";q=600;w=60', "RateLimit": '"default";r=50;t=30'}, 600, 50, 30, 60, 10),
    ({"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999"}, 5000, 4999, None, None, None),
    ({"X-RateLimit-Limit": "garbage"}, None, None, None, None, None),
])
def test_rate_limit_headers_are_read(headers, limit, remaining, reset, window, rate):
    quota = Quota.of(httpx.Headers(headers))
    assert (quota.limit, quota.remaining, quota.reset_s, quota.window_s) == (limit, remaining, reset, window)
    assert quota.rate() == pytest.approx(rate) if rate else quota.rate() is None


def test_an_epoch_reset_is_read_as_a_delay():
    quota = Quota.of(httpx.Headers({"X-RateLimit-Limit": "60", "X-RateLimit-Reset": str(int(time.time()) + 30)}))
    assert 28 <= quota.reset_s <= 30 and quota.rate() == pytest.approx(2, rel=0.1)


# -- 3. the request budget ------------------------------------------------------------------


@pytest.mark.parametrize("budget", [60, 100])
def test_a_request_budget_leaves_checks_not_checked_never_passed(cli, budget):
    run, seconds = cli("--max-requests", str(budget))
    results = run.results
    requirements = results["requirements"]
    print(f"--max-requests {budget}: {results['requests']} requests, {seconds:.1f} s")
    assert run.exit_code == 0, tail(run)
    assert results["requests"] <= budget
    assert not run.outcomes("error") and not run.outcomes("failed")
    # The budget is spent on a whole check of every requirement first: at 60 every one is checked.
    assert run.verdict == "conformant" and not run.outcomes("not_checked"), run.stdout[-3000:]
    checks = {check["id"]: check for check in results["checks"]}
    cut = [check for check in results["checks"] if check["message"] == f"request budget ({budget})"]
    assert cut and all(check["outcome"] == "not_checked" for check in cut)
    for rid, requirement in requirements.items():  # judged by some of its checks; the others never ran
        cited = [checks[check] for check in requirement["checks"]]
        assert any(check["outcome"] == "passed" for check in cited), rid
        assert all(check["outcome"] == "passed" or check in cut or check["message"].startswith(NOTHING_TO_JUDGE)
                   for check in cited), rid
        assert requirement["checks_cut_by_budget"] == sum(check in cut for check in cited), rid
        if requirement["checks_cut_by_budget"]:
            assert f"the rest: not reached within the request budget ({budget})" in requirement["reason"], rid
    assert all(requirement["requests"] >= 1 for rid, requirement in requirements.items() if rid.startswith("AUTH"))
    assert f"at most {budget} requests in all (--max-requests)" in run.stdout
    assert (f"request budget: {results['requests']} of {budget} requests sent" in run.stdout
            and f"{len(cut)} checks not reached" in run.stdout), run.stdout[-2000:]
    assert "How the request budget was spent" in (run.report_dir / "summary.md").read_text()
    assert 'id="cf-budget"' in (run.report_dir / "report.html").read_text(encoding="utf-8")


# Faults only the listing as a whole shows: a failure found with the last requests of the budget
# is confirmed by the walk the budget keeps back; a listing served in two orders, or pages that
# ignore the offset, cost no more than the walk.
@pytest.mark.parametrize("fault", ["oldest-first", "unstable-ties", "offset-ignored", "duplicate-jobs"])
def test_a_small_budget_still_detects_faults_of_the_whole_listing(cli, fault):
    with ReferenceServer(behaviour=fault) as server:
        run, _ = cli("--max-requests", "60", server=server)
    assert run.results["requests"] <= 60
    assert set(FAULTS[fault].breaks) <= run.outcomes("failed"), run.stdout[-3000:]


def test_a_second_walk_in_another_order_fails_ord_02_and_leaves_the_comparison_unjudged(cli):
    # unstable-ties: two replicas answer in turn, breaking created_at ties in opposite orders. A
    # window comparison that differs asks for a second walk, which holds the same jobs reordered.
    with ReferenceServer(behaviour="unstable-ties") as server:
        run, _ = cli("--concurrency", "1", "--", "-k", "test_offset_selects_the_window or walks_of_the_listing",
                     server=server)
    checks = {check["id"]: check for check in run.results["checks"]}
    walks = checks["test_ordering.py::test_walks_of_the_listing_keep_its_order"]
    assert walks["outcome"] == "failed" and "returned the same jobs in another order" in walks["message"], walks
    assert walks["curl"], walks  # the page of the second walk that differs
    unjudged = [check for check in checks.values() if check["message"] and "another order" in check["message"]
                and check is not walks]
    assert unjudged and all(check["outcome"] == "not_checked" for check in unjudged)
    assert run.outcome("ORD-02") == "failed" and run.exit_code == 1


def test_the_budget_counts_retries_and_refuses_without_sending():
    sent: list[str] = []
    answers = iter([429, 200, 200, 429])

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(next(answers), headers={"Retry-After": "0"}, stream=httpx.ByteStream(EMPTY_PAGE))

    with TargetClient("http://127.0.0.1:1", transport=httpx.MockTransport(handler), max_requests=3) as client:
        assert client.get("org_x", credential=None).status == 200  # a 429, then its retry: 2 of 3
        assert client.get("org_x", credential=None).status == 200
        with pytest.raises(BudgetExhausted, match=r"^request budget \(3\) spent$"):
            client.get("org_x", credential=None)
        assert client.request_count == len(sent) == 3


def test_the_budget_holds_across_threads():
    sent: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            sent.append(str(request.url))
        return httpx.Response(200, stream=httpx.ByteStream(EMPTY_PAGE))

    with TargetClient("http://127.0.0.1:1", transport=httpx.MockTransport(handler), max_requests=25) as client:
        def one(_: int) -> str:
            try:
                client.get("org_x", credential=None)
            except BudgetExhausted:
                return "refused"
            return "sent"

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(one, range(100)))
    assert outcomes.count("sent") == len(sent) == client.request_count == 25
    assert outcomes.count("refused") == 75


def test_limits_are_announced_before_the_first_request(cli):
    run, _ = cli("--max-requests", "60", "--max-rps", "200", "--", "-k", "no_credentials")
    assert ("conformance: requests: at most 60 requests in all (--max-requests), at most 200 a second (--max-rps); "
            "sending all 60 takes at least 0.3 s") in run.stdout.splitlines(), run.stdout[:2000]


def test_limit_lines():
    assert describe_limits(None, None) is None
    assert describe_limits(5, None) == ("conformance: requests: at most 5 a second (--max-rps); every 100 requests "
                                        "take at least 20 s")
    assert describe_limits(0.5, 600) == ("conformance: requests: at most 600 requests in all (--max-requests), at "
                                         "most 0.5 a second (--max-rps); sending all 600 takes at least 20 min")


# -- a certificate for the https case -----------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (needs the openssl CLI)."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl CLI")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    return cert, key
