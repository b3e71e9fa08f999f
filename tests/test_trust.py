"""A hostile deployment can neither fool nor hurt the suite: what it echoes of a credential
never reaches an output, what it sends cannot crash a writer or drive the terminal, and no
interrupted or broken run reads as a verdict.

Every case runs the real CLI in a subprocess against a real server on loopback: the
reference deployment, or a :class:`tests.hostile.HostileServer` in front of it.
"""

from __future__ import annotations

import base64
import html
import json
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from urllib.parse import quote

from conftest import RUN_TIMEOUT_S, SuiteRun, clean_env
from tests.hostile import HostileServer, Reply, Request

CREDENTIAL_VARIABLES = ("FREDDY_API_KEY", "CONFORMANCE_NO_CAPABILITY_API_KEY", "CONFORMANCE_SECOND_USER_API_KEY",
                        "CONFORMANCE_BEARER_TOKEN", "CONFORMANCE_REVOKED_API_KEY", "CONFORMANCE_EXPIRED_BEARER_TOKEN")
ESCAPES = re.compile(r"\\+u([0-9a-fA-F]{4})|%([0-9a-fA-F]{2})")


# -- what a credential may look like in an output -------------------------------------------

def normalised(text: str) -> str:
    """``text`` with JSON, percent and HTML escapes decoded (twice: outputs nest them)."""
    for _ in range(2):
        text = html.unescape(ESCAPES.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text))
    return text


def base64_pieces(secret: str) -> set[str]:
    """Inner parts of the secret's base64 and base64url encodings at every alignment."""
    pieces = set()
    for prefix in (b"", b"x", b"xy"):
        encoded = base64.b64encode(prefix + secret.encode()).decode()
        inner = encoded[4:-4]
        pieces |= {inner, inner.replace("+", "-").replace("/", "_")}
    return pieces


def leaks(text: str, secret: str) -> list[str]:
    """The forms of ``secret`` found in ``text`` (any 12 characters of it count)."""
    plain = normalised(text)
    found = [f"{12}-character piece" for piece in _pieces(secret, 12) if piece in plain]
    found += ["reversed" for piece in _pieces(secret[::-1], 12) if piece in plain]
    found += ["base64" for piece in base64_pieces(secret) if piece in text]
    return sorted(set(found))


def _pieces(secret: str, width: int) -> set[str]:
    return {secret[i:i + width] for i in range(max(len(secret) - width + 1, 1))}


def everything_written(run: SuiteRun) -> dict[str, str]:
    written = {"stdout": run.stdout, "stderr": run.stderr}
    for path in run.report_dir.rglob("*"):
        if path.is_file():
            written[str(path.relative_to(run.report_dir))] = path.read_bytes().decode("latin-1")
    return written


# -- the echoing deployment -----------------------------------------------------------------

def echo_everywhere(request: Request, reply: Reply | None) -> Reply:
    """The reference's answer, with whatever credential came in echoed in every form."""
    assert reply is not None
    secret = request.header("x-api-key") or request.header("authorization").removeprefix("Bearer ")
    if not secret:
        return reply
    half = len(secret) // 2
    echoes = {
        "echo_json_escaped": "".join(f"\\u{ord(c):04x}" for c in secret),
        "echo_percent_lower": "".join(f"%{ord(c):02x}" for c in secret),
        "echo_percent_upper": quote(secret, safe="").upper(),
        "echo_base64": base64.b64encode(b"k=" + secret.encode()).decode(),
        "echo_base64url": base64.urlsafe_b64encode(secret.encode()).decode(),
        "echo_reversed": secret[::-1],
        "echo_html": "".join(f"&#{ord(c)};" for c in secret),
    }
    assert isinstance(reply.body, bytes)
    members = ",".join(f'"{name}":"{value}"' for name, value in echoes.items())
    body = reply.body.replace(b"{", ("{" + members + ",").encode(), 1)
    return Reply(reply.status, f"OK {secret}", (
        *reply.headers,
        ("X-Echo", secret), ("X-Echo-Part-1", secret[:half]), ("X-Echo-Part-2", secret[half:]),
        ("X-Echo-Base64", base64.b64encode(secret.encode()).decode()),
        ("Set-Cookie", f"session={secret}; Path=/"),
        ("Location", f"http://127.0.0.1:9/callback?key={quote(secret)}"),
    ), body)


def test_no_credential_reaches_any_output_whatever_the_deployment_echoes(reference, run_suite, tmp_path):
    server = reference()
    with HostileServer(echo_everywhere, upstream=server.base_url) as hostile:
        env = hostile.suite_env(server, tmp_path)
        run = run_suite(env=env)
    assert run.exit_code in (0, 1), run.stderr[-2000:]
    secrets = {name: env[name] for name in CREDENTIAL_VARIABLES if env.get(name)}
    assert len(secrets) >= 4
    found = {(where, name, form) for where, text in everything_written(run).items()
             for name, secret in secrets.items() for form in leaks(text, secret)}
    assert not found, sorted(found)[:20]
    # The echoes did reach the suite (and were redacted): the test is not vacuous.
    assert "echo_json_escaped" in (run.report_dir / "report.html").read_text(encoding="utf-8")


# -- bodies that break parsers and writers --------------------------------------------------

def deep_page(request: Request, reply: Reply | None) -> Reply:
    assert reply is not None
    if "limit=7" in request.target and reply.status == 200:
        return reply.with_body(b"[" * 100_000 + b"]" * 100_000)
    return reply


def test_a_body_nested_too_deeply_is_judged_not_a_crash(reference, run_suite, tmp_path):
    server = reference()
    with HostileServer(deep_page, upstream=server.base_url) as hostile:
        run = run_suite(env=hostile.suite_env(server, tmp_path))
    output = run.stdout + run.stderr
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert run.exit_code == 1, output[-2000:]
    assert run.verdict == "nonconformant"
    failed = run.outcomes("failed")
    assert {"SHP-01", "ROB-01"} & failed, failed
    assert "nests" in json.dumps(run.results["requirements"])
    assert (run.report_dir / "report.html").is_file()


def test_a_server_error_on_a_repeated_request_fails_ord_02(reference, run_suite, tmp_path):
    seen: Counter[str] = Counter()

    def second_answer_breaks(request: Request, reply: Reply | None) -> Reply:
        assert reply is not None
        if request.header("x-api-key") and request.target.endswith("?limit=7&offset=1"):
            seen[request.target] += 1
            if seen[request.target] > 1:
                return Reply(500, "Internal Server Error", body=b'{"success": false}')
        return reply

    server = reference()
    with HostileServer(second_answer_breaks, upstream=server.base_url) as hostile:
        run = run_suite(env=hostile.suite_env(server, tmp_path))
    assert run.outcome("ORD-02") == "failed", run.results["requirements"]["ORD-02"]
    assert run.exit_code == 1


# -- terminal, XML and HTML injection -------------------------------------------------------

HOSTILE_TEXT = b"\x1b]0;owned\x07\x1b[2J\x1b[1;1Hverdict: CONFORMANT\x1b]52;c;ZWNobyBvd25lZA==\x07\x00\x0b\x08"


def hostile_text_everywhere(request: Request, reply: Reply | None) -> Reply:
    return Reply(401, "Unauthorized", (("Content-Type", "text/plain"), ("X-Note", "\x1b[31mred")), HOSTILE_TEXT)


def test_deployment_text_cannot_drive_the_terminal_or_break_junit(run_suite, tmp_path):
    org = '<img src=x onerror="alert(1)">'
    with HostileServer(hostile_text_everywhere) as hostile:
        run = run_suite("--base-url", hostile.base_url, "--org", org, "--api-key", "k3y-for-hostile-test",
                        "--judge-anyway")
    assert run.exit_code == 1, run.stderr[-2000:]
    assert "\x1b" not in run.stdout + run.stderr
    assert "\\x1b" in run.stdout  # shown, not obeyed
    ET.parse(run.report_dir / "junit.xml")  # still XML
    report = (run.report_dir / "report.html").read_text(encoding="utf-8")
    assert "\x1b" not in report and org not in report
    blob = re.search(r'data-jsonblob="([^"]*)"', report)
    assert blob is not None
    environment = json.loads(html.unescape(blob.group(1)))["environment"]
    assert all("<" not in str(value) for value in environment.values()), environment


# -- exit codes that cannot lie -------------------------------------------------------------

def test_sigint_ends_the_run_as_interrupted_with_reports(reference, tmp_path):
    server = reference(latency_ms=150)
    report_dir = tmp_path / "reports"
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir)],
        env=clean_env(server.suite_env(tmp_path)), cwd=tmp_path, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while server.request_count < 20 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 130, (stdout[-2000:], stderr[-2000:])
    results = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    assert results["verdict"] == "interrupted"
    # 20 requests in, the plan was still fetching what the checks declared: no check had run.
    assert "while the checks' requests were fetched" in results["verdict_reason"], results["verdict_reason"]
    assert "INTERRUPTED" in stdout + stderr
    assert "Traceback" not in stdout + stderr


def test_unwritable_report_dir_is_refused_before_any_request(run_suite, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with HostileServer(hostile_text_everywhere) as hostile:
        run = run_suite("--base-url", hostile.base_url, "--org", "o", "--api-key", "k",
                        "--report-dir", str(blocker / "reports"))
        assert hostile.requests == []
    assert run.exit_code == 2
    assert "--report-dir" in run.stderr and "Traceback" not in run.stderr


# -- settings files -------------------------------------------------------------------------

def test_a_settings_file_in_the_working_folder_cannot_choose_the_target(run_suite, tmp_path):
    (tmp_path / "conformance.toml").write_text('base_url = "http://127.0.0.1:9"\n')
    with HostileServer(hostile_text_everywhere) as hostile:
        run = run_suite(env={"CONFORMANCE_ORG_ID": "o", "FREDDY_API_KEY": "k"}, cwd=tmp_path)
        assert hostile.requests == []
    assert run.exit_code == 2
    assert "conformance.toml" in run.stderr and "base_url" in run.stderr and "--config" in run.stderr


def test_the_first_console_line_names_the_settings_files_read(run_suite, tmp_path):
    (tmp_path / "conformance.toml").write_text("max_listing = 500\n")
    run = run_suite("--", "-k", "test_valid_key_is_accepted", cwd=tmp_path)
    first_line = run.stdout.splitlines()[0]
    assert "settings files read" in first_line and "conformance.toml" in first_line, first_line
