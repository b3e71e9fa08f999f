"""A hostile deployment can neither fool nor hurt the suite's HTTP client (issue 11).

Each case is an attack found by a proxy in front of the reference deployment, played by a
:class:`tests.hostile.HostileServer` on loopback, against the real client (``TargetClient``,
in this process or in a subprocess that measures its own memory) or the real CLI in a
subprocess. Time bounds are generous (five times a quiet machine's need or more): each
says only that nothing waits for the attacker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import config
from conformance.client import (
    KEPT_HEADER_CHARS,
    KEPT_HEADERS,
    QUOTED_CHARS,
    RateLimitExhausted,
    TargetClient,
    TargetUnreachable,
)
from conftest import SuiteRun, clean_env
from tests.hostile import HostileServer, Reply, Request
from tests.peak_memory import PEAK_MIB

RUN_LIMIT_S = 120  # one CLI run; every run here ends in seconds once the client holds its ground
JSON = (("Content-Type", "application/json"),)
EMPTY_PAGE = b'{"jobs": [], "limit": 50, "offset": 0}'


pytestmark = pytest.mark.usefixtures("hard_limit")


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., tuple[SuiteRun, float]]:
    """``conformance run`` in a subprocess with these environment settings: what it left
    behind, and how long it took. A run still going at ``limit`` fails the test."""
    counter = iter(range(1000))

    def run(*args: str, env: dict[str, str], limit: float = RUN_LIMIT_S) -> tuple[SuiteRun, float]:
        report_dir = tmp_path / f"reports-{next(counter)}"
        started = time.monotonic()
        try:
            completed = subprocess.run(
                [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir), *args],
                env=clean_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=limit,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"conformance run was still going after {limit:g} s")
        seconds = time.monotonic() - started
        return SuiteRun(completed.returncode, completed.stdout, completed.stderr, report_dir), seconds

    return run


def error_lines(run: SuiteRun) -> list[str]:
    return run.stderr.strip().splitlines()


# -- 1. nothing a deployment sets travels with a later request -------------------------------


def test_cookies_and_challenges_set_by_the_deployment_are_never_sent_back(cli, reference, tmp_path):
    """Every answer sets a cookie (and a 401 challenges for Basic credentials): the checks that
    must carry no credential (AUTH-01/02) carry none, and no request carries the cookie."""
    def set_cookie(request: Request, reply: Reply | None) -> Reply:
        assert reply is not None
        reply = reply.with_headers(("Set-Cookie", "session=planted-by-the-deployment; Path=/"),
                                   ("Set-Cookie", "tracker=planted-too; Domain=127.0.0.1; Path=/v1"))
        return reply.with_headers(("WWW-Authenticate", 'Basic realm="planted"')) if reply.status == 401 else reply

    upstream = reference()
    with HostileServer(set_cookie, upstream=upstream.base_url) as hostile:
        run, _ = cli("--", "-k", "auth", env=hostile.suite_env(upstream, tmp_path))
    assert run.results["requirements"]["AUTH-01"]["outcome"] == "passed", run.stdout[-2000:] + run.stderr[-2000:]
    assert len(hostile.requests) > 5
    carried = [request.target for request in hostile.requests if "planted" in json.dumps(request.headers)]
    assert carried == [], f"{len(carried)} requests carried what the deployment set, first {carried[0]}"
    bare = [r for r in hostile.requests if not {"x-api-key", "authorization", "cookie"} & set(r.headers)]
    assert bare, "no request went without a credential: the unauthenticated checks did not run"


# -- 2. a credential a header cannot carry: a configuration error, before any request ---------


SECRET_SETTINGS = [spec.name for spec in config.SETTINGS if spec.secret]
FLAWED = {
    "trailing line break": ("fk_live_Zq4v8TnS0rXk2\r\n", "contains a line break at its end (a copy-paste slip?)"),
    "non-ASCII": ("fk_live_Zq4v8Tñ0rXk2", "contains a non-ASCII character inside it"),
    "inner space": ("fk_live_Zq4v8 Tn0rXk2", "contains a space inside it"),
}


@pytest.mark.parametrize("name", SECRET_SETTINGS)
@pytest.mark.parametrize("flaw", FLAWED)
def test_every_credential_setting_is_checked_for_what_a_header_cannot_carry(name, flaw, tmp_path):
    value, said = FLAWED[flaw]
    options = {"base_url": "http://127.0.0.1:9", "org": "org_x", "api_key": "fk_live_fine", name: value}
    with pytest.raises(config.ConfigError) as raised:
        config.resolve(options, environ={}, cwd=tmp_path)
    message = str(raised.value)
    assert message == f"{config.setting_label(name)}: {said}; a header cannot carry it"
    assert "Zq4v8" not in message


@pytest.mark.parametrize("flaw", ["trailing line break", "non-ASCII"])
def test_a_pasted_key_exits_2_naming_the_setting_and_never_printing_the_key(cli, flaw):
    key, said = FLAWED[flaw]
    with HostileServer(lambda request, reply: Reply(body=EMPTY_PAGE)) as hostile:
        run, _ = cli(env={"CONFORMANCE_BASE_URL": hostile.base_url, "CONFORMANCE_ORG_ID": "org_x",
                          "FREDDY_API_KEY": key})
    assert run.exit_code == 2, run.stderr
    assert error_lines(run) == [f"conformance: configuration error: --api-key (FREDDY_API_KEY): {said}; "
                                "a header cannot carry it"]
    assert "Zq4v8" not in run.stdout + run.stderr
    assert hostile.requests == [], "a request went out before the configuration was checked"


# -- 3. memory and time bombs: decoded bytes counted as they come out of the decoder ----------


@pytest.fixture(scope="module")
def gzip_of_a_gibibyte() -> bytes:
    """1 GiB of zeros, gzipped: about 1 MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    mebibyte = bytes(1 << 20)
    return b"".join([*(compressor.compress(mebibyte) for _ in range(1024)), compressor.flush()])


def gzipped(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(data) + compressor.flush()


# Runs in a subprocess so that its peak memory is its own. The address-space limit makes a
# client that inflates everything fail there with MemoryError, instead of taking the machine.
BOMB_CLIENT = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from conformance.client import TargetClient
outcome = {}
started = time.monotonic()
try:
    with TargetClient(sys.argv[1], timeout=float(sys.argv[2])) as client:
        response = client.get("org_x", credential=None)
        outcome["status"] = response.status
        try:
            response.json()
            outcome["judged"] = "JSON"
        except ValueError as error:
            outcome["judged"] = str(error)
except BaseException as error:
    outcome["error"] = f"{type(error).__name__}: {error}"[:500]
outcome["seconds"] = round(time.monotonic() - started, 3)
outcome["peak_rss_mib"] = round(peak_mib(), 1)
print(json.dumps(outcome))
"""
BOMB_TIMEOUT_S = 10.0


@pytest.mark.parametrize("coding, judged", [
    ("gzip, gzip", "body could not be decoded: Content-Encoding 'gzip, gzip' stacks 2 codings; the suite decodes "
                   "at most one (it asked for Accept-Encoding: gzip, deflate)"),
    ("gzip", "body is larger than 1024 KiB, the most the suite reads of one response"),
])
def test_a_compression_bomb_is_judged_in_bounded_memory_and_time(gzip_of_a_gibibyte, coding, judged):
    """1 GiB of zeros gzipped twice (1.8 KB on the wire) or once (1 MiB): the first is refused
    undecoded, the second decoded up to the cap; either way within the request's deadline."""
    body = gzipped(gzip_of_a_gibibyte) if coding == "gzip, gzip" else gzip_of_a_gibibyte
    bomb = Reply(headers=(*JSON, ("Content-Encoding", coding)), body=body)
    with HostileServer(lambda request, reply: bomb) as hostile:
        command = [sys.executable, "-c", PEAK_MIB + BOMB_CLIENT, hostile.base_url, str(BOMB_TIMEOUT_S)]
        completed = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"{coding}: {len(body)} bytes sent, peak RSS {outcome['peak_rss_mib']} MiB, {outcome['seconds']} s")
    assert "error" not in outcome, outcome
    assert outcome["status"] == 200 and outcome["judged"].startswith(judged), outcome
    assert outcome["peak_rss_mib"] < 300, outcome
    assert outcome["seconds"] < BOMB_TIMEOUT_S, "decoding outlived the request's deadline"
    assert hostile.requests[0].header("accept-encoding") == "gzip, deflate"


# -- 4. an unusable redirect target: a 3xx like any other, judged -----------------------------


def test_a_redirect_to_an_unusable_location_is_judged(cli, reference, tmp_path):
    def javascript_redirect(request: Request, reply: Reply | None) -> Reply:
        return Reply(302, "Found", (("Location", "javascript:alert(document.cookie)"),), b"")

    upstream = reference()
    with HostileServer(javascript_redirect, upstream=upstream.base_url) as hostile:
        run, _ = cli("--", "-k", "valid_key_is_accepted or page_is_a_json_object",
                     env=hostile.suite_env(upstream, tmp_path))
    assert "Traceback" not in run.stdout + run.stderr, run.stderr[-3000:]
    assert run.exit_code == 1 and run.verdict == "nonconformant", run.stdout[-2000:] + run.stderr[-2000:]
    assert "-> 302" in run.results["requirements"]["AUTH-03"]["reason"]


# -- 5. target death: the run ends soon after, quietly -----------------------------------------


def test_a_target_that_dies_after_the_preflight_ends_the_run_quickly_and_quietly(cli, reference, tmp_path):
    """The target stops listening at its second request, just after the preflight: every
    shared answer (the listing's walk) holds the failure, and every check meets it."""
    upstream = reference()
    seen = iter(range(1, 10**6))
    lock = threading.Lock()

    def die_at_the_second_request(request: Request, reply: Reply | None) -> Reply:
        with lock:
            number = next(seen)
        if number == 2:
            threading.Thread(target=hostile.stop, daemon=True).start()
        return reply if number < 2 and reply is not None else Reply(raw=b"")

    hostile = HostileServer(die_at_the_second_request, upstream=upstream.base_url).start()
    try:
        run, seconds = cli(env=hostile.suite_env(upstream, tmp_path))
    finally:
        hostile.stop()
    output = run.stdout + run.stderr
    print(f"target death: {seconds:.1f} s, {len(output)} characters of output")
    assert run.exit_code == 3, run.stderr[-2000:]
    assert seconds < 30, f"the run took {seconds:.0f} s after its target died"
    assert len(output.encode()) < 200_000, f"{len(output)} characters of output"
    assert "Traceback" not in output
    assert error_lines(run)[-1].startswith("conformance: target unreachable during the run: the suite gave up")


# -- 6. a Retry-After longer than the suite waits: honoured once for the whole client ---------


@pytest.mark.parametrize("retry_after, honoured, said", [
    (12, 12, "asking to wait 12 s, again, after the suite had waited once"),  # waited once, not again
    (3600, 0, "asking to wait 3600 s, longer than the 65 s the suite waits"),  # not waited at all
])
def test_a_long_retry_after_is_honoured_once_not_waited_out_by_every_check(cli, retry_after, honoured, said):
    asked = Reply(429, "Too Many Requests", (*JSON, ("Retry-After", str(retry_after))),
                  b'{"error": {"code": "rate_limit_error", "message": "slow down"}}')
    with HostileServer(lambda request, reply: asked) as hostile:
        run, seconds = cli(env={"CONFORMANCE_BASE_URL": hostile.base_url, "CONFORMANCE_ORG_ID": "org_x",
                                "FREDDY_API_KEY": "fk_live_Zq4v8TnS0rXk2"}, limit=120)
    print(f"429 asking for {retry_after} s: {seconds:.1f} s, {len(hostile.requests)} requests reached the target")
    assert run.exit_code == 3, run.stdout[-2000:]
    assert honoured <= seconds < honoured + 30, f"the run took {seconds:.0f} s"
    assert len(hostile.requests) <= 3
    [line] = error_lines(run)
    assert line.startswith("conformance: target unreachable: rate limited: GET ") and said in line, line


def test_while_rate_limited_every_request_fails_at_once_without_being_sent(reference):
    upstream = reference()
    answered = iter(range(10**6))
    lock = threading.Lock()

    def limit_after_three(request: Request, reply: Reply | None) -> Reply:
        with lock:
            number = next(answered)
        if number < 3 and reply is not None:
            return reply
        return Reply(429, "Too Many Requests", (*JSON, ("Retry-After", "3600")), b"{}")

    with HostileServer(limit_after_three, upstream=upstream.base_url) as hostile, \
            TargetClient(hostile.base_url, concurrency=4) as client:
        org = upstream.fixture.organization_id
        failures: list[BaseException] = []

        def send() -> None:
            try:
                client.get(org, {"limit": 1}, credential=None)
            except RateLimitExhausted as error:
                failures.append(error)

        started = time.monotonic()
        threads = [threading.Thread(target=send) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        seconds = time.monotonic() - started
    assert seconds < 10, f"{seconds:.0f} s for 40 requests to a target that asked to wait an hour"
    assert len(failures) == 37
    assert len(hostile.requests) <= 3 + 4, "requests went on to a target that asked to wait"
    refused = [str(error) for error in failures if str(error).startswith("not sent: ")]
    assert refused and all(len(message) < 300 and "until" in message for message in refused), refused[:3]


# -- 7. what the client keeps of an answer is bounded ------------------------------------------


def test_what_an_exchange_keeps_of_a_huge_head_is_bounded():
    headers = tuple((f"X-Filler-{index}", "v" * 30) for index in range(1500))
    sprawling = Reply(302, "Found " + "r" * 20_000, (*JSON, ("Location", "https://elsewhere.example/" + "l" * 30_000),
                                                     *headers), b"")
    with HostileServer(lambda request, reply: sprawling) as hostile, TargetClient(hostile.base_url) as client:
        response = client.get("org_x", credential=None)
    assert response.status == 302
    kept = response.exchange.response_headers
    received = len(response.headers.multi_items())
    assert received > 1500
    assert len(kept) == KEPT_HEADERS + 1 and kept[-1] == ("...", f"{received - KEPT_HEADERS} more headers, not kept")
    assert max(len(name) + len(value) for name, value in kept) < KEPT_HEADER_CHARS + 100
    assert "r" * 200 not in json.dumps(response.exchange.to_dict()), "the reason phrase was kept"


@pytest.mark.parametrize("head, said", [
    (b"HTTQ/1.1 200 " + b"A" * 50_000 + b"\r\n\r\n", "answered with something that is not HTTP"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"f" * 200_000 + b"\r\n\r\n", "answered with something that is not HTTP"),
], ids=["garbage-status-line", "head-over-100-KiB"])
def test_an_error_quotes_a_bounded_excerpt_of_what_the_deployment_sent(head, said):
    with HostileServer(lambda request, reply: Reply(raw=head)) as hostile, TargetClient(hostile.base_url) as client:
        with pytest.raises(TargetUnreachable) as raised:
            client.get("org_x", credential=None)
    message = str(raised.value)
    assert said in message and len(message) < QUOTED_CHARS + 200, message[:1000]
