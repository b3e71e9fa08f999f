"""The suite against live deployments: read-only, paced, bounded, never fooled, never hanging.

Each case runs the real CLI (or the real client) against the real reference deployment in one
of its modes (conformance/reference/modes.py), and must end with the right outcome and
message, without a traceback, inside a hard time limit (subprocess timeouts, and an alarm
around every test: pytest-timeout is not used, its --timeout collides with the suite's).
"""

from __future__ import annotations

import http.server
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from conformance.client import (
    RateLimitExhausted,
    TargetClient,
    TargetUnreachable,
    parse_retry_after,
    retry_after_seconds,
)
from conformance.reference import ReferenceServer
from conformance.reference.modes import Misbehaviour
from conftest import SuiteRun, clean_env, reference_env

RUN_LIMIT_S = 120  # one CLI run against a misbehaving target (seconds on a quiet machine; CI machines are busy)
ROB_DEBUG = "test_robustness.py::test_unknown_parameter_is_ignored[debug]"
ONLY_ROB_02 = ("--", "-k", "unknown_parameter")


pytestmark = pytest.mark.usefixtures("hard_limit")


@pytest.fixture
def cli(tmp_path: Path):
    """Run ``conformance run`` in a subprocess; no traceback may reach its output."""
    counter = iter(range(1000))

    def run(*args: str, server: ReferenceServer | None = None, limit: float = RUN_LIMIT_S) -> SuiteRun:
        report_dir = tmp_path / f"reports-{next(counter)}"
        env = reference_env(server, tmp_path) if server is not None else {}
        completed = subprocess.run(
            [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir), *args],
            env=clean_env(env), cwd=tmp_path, capture_output=True, text=True, timeout=limit,
            stdin=subprocess.DEVNULL)
        run = SuiteRun(completed.returncode, completed.stdout, completed.stderr, report_dir)
        assert "Traceback" not in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr[-3000:]
        return run

    return run


def check(run: SuiteRun, check_id: str) -> dict:
    return next(c for c in run.results["checks"] if c["id"] == check_id)


def one_line(run: SuiteRun) -> str:
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- unreachable: one line naming the cause, exit 3, before any check -------------------------


def test_refused_connection_is_target_unreachable(cli):
    port = closed_port()
    run = cli("--base-url", f"http://127.0.0.1:{port}", "--org", "org_x", "--api-key", "fk_test_key")
    assert run.exit_code == 3
    assert one_line(run).startswith(f"conformance: target unreachable: connection refused by 127.0.0.1:{port}")
    assert not (run.report_dir / "results.json").exists()


def test_timeout_is_target_unreachable_within_the_deadline(cli, reference):
    server = reference(latency_ms=1500)
    started = time.monotonic()
    run = cli("--timeout", "0.5", server=server)
    assert run.exit_code == 3
    assert one_line(run).startswith("conformance: target unreachable: timed out after 0.5 s waiting for 127.0.0.1:")
    assert time.monotonic() - started < 1.5 * 5, "the preflight waited for the answer past its deadline"


def test_dns_failure_is_named():
    # Resolving a name would ask the network's resolver: the resolver's answer is made up here.
    def no_such_host(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(
            -2, "Name or service not known")

    with TargetClient("https://staging.example.invalid", transport=httpx.MockTransport(no_such_host)) as client:
        with pytest.raises(TargetUnreachable, match=r"^DNS lookup failed for staging\.example\.invalid "):
            client.get("org_x", {"limit": 1}, credential=None)


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI, else the cryptography package)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    if shutil.which("openssl"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
        return cert, key
    x509 = pytest.importorskip("cryptography.x509", reason="needs the openssl CLI or the cryptography package")
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    built = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
             .not_valid_after(now + timedelta(days=2))
             .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
             .sign(private, hashes.SHA256()))
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


def test_self_signed_certificate_is_a_tls_error_unless_trusted(cli, reference, certificate):
    cert, key = certificate
    server = reference(ssl_certfile=cert, ssl_keyfile=key)
    assert server.base_url.startswith("https://")

    refused = cli(server=server)
    assert refused.exit_code == 3
    assert one_line(refused).startswith("conformance: target unreachable: TLS certificate verify failed for "
                                        "127.0.0.1: self-signed certificate")

    for trust in (("--ca-bundle", str(cert)), ("--insecure",)):
        run = cli(*trust, "--", "-k", "valid_key_is_accepted or page_is_a_json_object", server=server)
        assert run.exit_code == 0, run.stderr
        assert run.outcome("AUTH-03") == "passed" and run.outcome("SHP-01") == "passed"
        assert not run.outcomes("error") and not run.outcomes("failed")


# -- answers that broke off: error ("not judged"), never failed, never a crash ----------------


@pytest.mark.parametrize("kind, said", [
    ("reset", "the body broke off after 911 of the 1822 bytes announced (connection reset); not judged"),
    ("wrong-content-length", "the body broke off after 1822 of the 2822 bytes announced (the connection closed "
                             "early); not judged"),
])
def test_broken_off_body_is_an_error_not_a_failure(cli, reference, kind, said):
    server = reference(misbehaviour=Misbehaviour(kind, when="debug=true"))
    run = cli(*ONLY_ROB_02, server=server)
    judged = check(run, ROB_DEBUG)
    assert judged["outcome"] == "error" and judged["message"].endswith(said), judged
    assert judged["requests"] == 2, "a broken-off answer is asked for once more, then given up"
    assert run.outcome("ROB-02") == "error"


def test_slow_trickle_is_cut_at_the_total_deadline(cli, reference):
    server = reference(misbehaviour=Misbehaviour("trickle", when="debug=true"))
    run = cli("--timeout", "1", *ONLY_ROB_02, server=server)
    judged = check(run, ROB_DEBUG)
    assert judged["outcome"] == "error", judged
    assert "the body was still incomplete at the 1 s deadline" in judged["message"]
    assert judged["duration_s"] < 1 * 5, "a trickling body held the check past its deadline"


def test_trickling_headers_are_cut_at_the_total_deadline():
    """Each read returns a byte, so httpx's per-read timeout alone would never fire."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"x" * 1000:
                if stop.wait(0.05):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with TargetClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.6) as client:
            started = time.monotonic()
            with pytest.raises(TargetUnreachable, match=r"^timed out after 0\.6 s waiting for"):
                client.get("org_x", {"limit": 1}, credential=None)
            assert time.monotonic() - started < 0.6 * 5
    finally:
        stop.set()
        listener.close()
        thread.join(5)


# -- answers that are judged: failed with a message that says what was wrong -----------------


def test_non_json_pages_are_judged_not_crashed_on(cli, reference):
    server = reference(misbehaviour=Misbehaviour("non-json"))
    run = cli(server=server)
    assert run.exit_code == 1 and run.verdict == "nonconformant"
    requirements = run.results["requirements"]
    assert requirements["SHP-01"]["outcome"] == "failed" and "'text/html'" in requirements["SHP-01"]["reason"]
    assert requirements["AUTH-03"]["outcome"] == "failed" and "body is not JSON" in requirements["AUTH-03"]["reason"]
    assert "the listing could not be walked" in run.results["requirements"]["SHP-02"]["reason"]
    assert not run.outcomes("error")


def test_truncated_json_is_judged(cli, reference):
    server = reference(misbehaviour=Misbehaviour("truncated-json"))
    run = cli("--", "-k", "page_is_a_json_object", server=server)
    shape = run.results["requirements"]["SHP-01"]
    assert shape["outcome"] == "failed" and "body is not JSON (Unterminated string" in shape["reason"], shape


def test_oversized_body_is_read_up_to_the_cap_and_judged(cli, reference):
    server = reference(misbehaviour=Misbehaviour("oversized", when="debug=true"))
    run = cli(*ONLY_ROB_02, server=server)
    judged = check(run, ROB_DEBUG)
    assert judged["outcome"] == "failed", judged
    assert "body is larger than 1024 KiB, the most the suite reads of one response" in judged["message"]


# -- redirects: reported as they are, never followed, no credential to another host -----------


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(dict(self.headers))
        body = b'{"jobs": [], "limit": 50, "offset": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_host() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A second loopback server that records every request's headers."""
    recorder = type("Recorder", (_Recorder,), {"seen": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", recorder.seen
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_redirect_to_another_host_is_judged_and_never_followed(cli, reference, other_host):
    location, seen = other_host
    server = reference(misbehaviour=Misbehaviour("redirect", location=location))
    run = cli(server=server)
    assert seen == [], "the suite followed a redirect to another host"
    assert run.exit_code == 1 and run.verdict == "nonconformant"
    assert "-> 302" in run.results["requirements"]["AUTH-03"]["reason"]
    everything = run.stdout + run.stderr + (run.report_dir / "results.json").read_text()
    assert server.fixture.api_key not in everything


def test_client_refuses_to_send_credentials_to_another_host(other_host):
    location, seen = other_host
    with TargetClient("http://127.0.0.1:1") as client, pytest.raises(ValueError, match="outside"):
        client.get("org_x", credential=None, url=f"{location}/v1/music/org_x/generations")
    assert seen == []


# -- 429: honoured, bounded, never a failure of the deployment --------------------------------


def test_default_run_under_a_rate_limit_is_conformant_and_read_only(cli, reference):
    server = reference(rate_limit=20)
    run = cli(server=server, limit=80)
    assert run.exit_code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.verdict == "conformant"
    assert server.modes.rate_limited > 0, "the run never met the rate limit, so this proves nothing"
    assert {method for method, _ in server.requests_seen} == {"GET"}


def test_429_storm_on_one_request_is_an_error_with_the_reason(cli, reference):
    server = reference(misbehaviour=Misbehaviour("always-429", when="debug=true", retry_after="0"))
    run = cli(*ONLY_ROB_02, server=server)
    judged = check(run, ROB_DEBUG)
    assert judged["outcome"] == "error", judged
    assert "still answered 429 after 6 retries" in judged["message"] and "not judged" in judged["message"]
    assert run.outcome("ROB-02") == "error"


def test_429_storm_from_the_start_ends_the_run_at_once(cli, reference):
    server = reference(misbehaviour=Misbehaviour("always-429", retry_after="0"))
    run = cli(server=server)
    assert run.exit_code == 3
    assert one_line(run).startswith("conformance: target unreachable: rate limited: GET ")
    assert server.request_count == 7


def test_retry_after_longer_than_the_suite_waits_is_not_waited_for(reference):
    server = reference(misbehaviour=Misbehaviour("always-429", retry_after="3600"))
    with TargetClient(server.base_url) as client:
        started = time.monotonic()
        with pytest.raises(RateLimitExhausted, match="asking to wait 3600 s, longer than the 65 s"):
            client.get(server.fixture.organization_id, credential=None)
        assert time.monotonic() - started < 5


def test_client_gives_up_on_a_target_that_keeps_rate_limiting(reference):
    server = reference(misbehaviour=Misbehaviour("always-429", retry_after="0"))
    with TargetClient(server.base_url) as client:
        for _ in range(3):
            with pytest.raises(RateLimitExhausted, match="still answered 429"):
                client.get(server.fixture.organization_id, credential=None)
        sent = server.request_count
        with pytest.raises(RateLimitExhausted, match="^not sent: the suite gave up on the target"):
            client.get(server.fixture.organization_id, credential=None)
        assert server.request_count == sent


@pytest.mark.parametrize("header", [
    lambda moment: format_datetime(moment, usegmt=True),  # IMF-fixdate
    lambda moment: moment.strftime("%A, %d-%b-%y %H:%M:%S GMT"),  # RFC 850
    lambda moment: moment.strftime("%a %b %d %H:%M:%S %Y").replace(" 0", "  "),  # asctime, no comma
], ids=["imf-fixdate", "rfc850", "asctime"])
def test_retry_after_http_dates_are_understood(header):
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    assert 27 <= parse_retry_after(header(moment)) <= 30


def test_retry_after_seconds_and_backoff():
    rng = random.Random(1)
    assert parse_retry_after(" 7 ") == 7 and parse_retry_after("0") == 0
    for unreadable in (None, "", "soon", "-3", "nan"):
        assert parse_retry_after(unreadable) is None
    waits = [retry_after_seconds(None, attempt, rng) for attempt in range(8)]
    assert all(0.125 <= wait <= 12 for wait in waits) and waits[5] > waits[0]


# -- pacing and concurrency: the client's own bounds, seen from the server --------------------


def test_max_rps_keeps_under_the_servers_rate_limit(reference):
    server = reference(rate_limit=20)
    org = server.fixture.organization_id
    with TargetClient(server.base_url, max_rps=20) as paced:
        started = time.monotonic()
        for _ in range(25):
            paced.get(org, {"limit": 1}, credential=None)
        assert time.monotonic() - started >= 24 / 20
    assert server.modes.rate_limited == 0, "paced at the server's rate, yet rate limited"
    with TargetClient(server.base_url) as unpaced:
        for _ in range(25):
            unpaced.get(org, {"limit": 1}, credential=None)
    assert server.modes.rate_limited > 0, "without pacing the same burst should meet the limit"


def test_concurrency_bounds_requests_in_flight(reference):
    server = reference(latency_ms=300)
    with TargetClient(server.base_url, concurrency=2) as client:
        started = time.monotonic()
        threads = [threading.Thread(target=client.get, args=(server.fixture.organization_id,),
                                    kwargs={"credential": None}) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert time.monotonic() - started >= 3 * 0.3, "more than 2 requests were in flight at once"
    assert server.request_count == 6


def test_client_gives_up_on_a_target_that_stops_answering(reference):
    server = reference(latency_ms=1000)
    with TargetClient(server.base_url, timeout=0.3) as client:
        for _ in range(3):
            with pytest.raises(TargetUnreachable, match="^timed out after 0.3 s"):
                client.get(server.fixture.organization_id, credential=None)
        sent = server.request_count
        with pytest.raises(TargetUnreachable, match="^not sent: the suite gave up on the target after 3 requests"):
            client.get(server.fixture.organization_id, credential=None)
        assert server.request_count == sent, "a request went out after the client gave up"


# -- a live listing: changes are never blamed on the deployment -------------------------------


def test_live_listing_is_never_failed(cli, reference):
    server = reference(live=True)
    run = cli(server=server)
    assert run.exit_code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.verdict in ("conformant", "incomplete")
    assert not run.outcomes("failed") and not run.outcomes("error")
    assert server.modes.live.inserted > 10
    assert run.results["listing"]["changed_during_run"] is True
    changed = [r for r in run.results["requirements"].values() if r["outcome"] == "not_checked"]
    assert all("listing changed during the run" in (r["reason"] or "") for r in changed), changed
    assert {method for method, _ in server.requests_seen} == {"GET"}
