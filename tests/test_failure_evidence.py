"""Failures carry evidence a person can act on, the same in every artifact.

Against deployments whose pages are off by one (a window that starts one job late, a page one
job too long): every failed check's curl, run as a person would run it, gets an answer that
differs from the one a correct deployment gives to the same request, so it reproduces the
failure; the console, junit.xml, report.html and results.json show that same curl; and what a
failed check did not reach (it stopped at its failure) is not checked everywhere, junit included.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.reference import ReferenceServer
from conftest import RUN_TIMEOUT_S, SuiteRun, clean_env
from tests.test_reports import html_text, junit_cases

pytestmark = pytest.mark.slow

PAGE_FAULTS = ("offset-off-by-one", "limit-off-by-one")
STOPPED = "stopped at a failure of"


@dataclass
class FaultyRun:
    run: SuiteRun
    broken: ReferenceServer
    sound: ReferenceServer  # the same seeded data, without the fault
    workdir: Path

    def failed_checks(self) -> list[dict]:
        return [check for check in self.run.results["checks"] if check["outcome"] == "failed"]

    def answer(self, server: ReferenceServer, curl: str) -> str:
        """The body ``curl`` gets from ``server``, run by bash with the server's credentials."""
        command = curl.replace(self.broken.base_url, server.base_url)
        env = {**clean_env(), **server.suite_env(self.workdir)}
        completed = subprocess.run(["bash", "-c", command], check=False, env=env, capture_output=True, timeout=60,
                                   stdin=subprocess.DEVNULL)
        assert completed.returncode == 0, completed.stderr
        head, _, body = completed.stdout.partition(b"\r\n\r\n")  # curl -i: the status line and headers first
        assert head.startswith(b"HTTP/1.1 "), completed.stdout[:200]
        return body.decode("utf-8")


@pytest.fixture(scope="module", params=PAGE_FAULTS)
def faulty(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyRun]:
    workdir = tmp_path_factory.mktemp(request.param)
    with ReferenceServer(behaviour=request.param) as broken, ReferenceServer() as sound:
        report_dir = workdir / "reports"
        # As many property examples as the ci profile had before it became lean, so the
        # properties meet the fault too and a check citing several requirements stops at it.
        command = [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir), "--examples", "100"]
        completed = subprocess.run(command, check=False, env=clean_env(broken.suite_env(workdir)), cwd=workdir,
                                   capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
        run = SuiteRun(completed.returncode, completed.stdout, completed.stderr, report_dir)
        assert run.exit_code == 1 and run.verdict == "nonconformant", completed.stdout[-3000:]
        yield FaultyRun(run, broken, sound, workdir)


def test_every_failures_curl_reproduces_it(faulty):
    failed = faulty.failed_checks()
    assert len(failed) >= 10
    not_reproduced = []
    for check in failed:
        assert check["curl"], check["id"]
        got, correct = (faulty.answer(server, check["curl"]) for server in (faulty.broken, faulty.sound))
        if json.loads(got) == json.loads(correct):
            not_reproduced.append(f"{check['id']}: {check['curl']}")
    assert not_reproduced == []


def test_the_curl_is_the_request_the_message_names(faulty):
    named = 0
    for check in faulty.failed_checks():
        request = re.search(r"GET (/v1/\S+) -> \d{3}", check["message"])
        if request:
            named += 1
            assert curl_url(check["curl"]).endswith(request.group(1)), check["id"]
    assert named


def curl_url(curl: str) -> str:
    return next(word for word in shlex.split(curl) if word.startswith("http"))


def test_the_curl_is_the_same_in_every_artifact(faulty):
    junit = ET.parse(faulty.run.report_dir / "junit.xml").getroot()
    failures = {case.get("name"): case.find("failure") for case in junit.iter("testcase")}
    report = html_text(faulty.run.report_dir)
    for check in faulty.failed_checks():
        curl = check["curl"]
        assert curl in faulty.run.stdout, check["id"]
        assert curl in report, check["id"]
        failure = failures[check["id"].split("::", 1)[1]]
        assert failure is not None and f"reproduce:\n{curl}" in failure.text, check["id"]


def test_what_a_failed_check_did_not_reach_is_not_checked_everywhere(faulty):
    results = faulty.run.results
    cases = junit_cases(faulty.run.report_dir)
    unreached = {rid: r for rid, r in results["requirements"].items() if STOPPED in (r["reason"] or "")}
    assert unreached, "no failed check stopped before one of its requirements"
    for check in results["checks"]:
        outcome, properties = cases[check["id"]]
        assert outcome == check["outcome"], check["id"]
        cited = properties["requirements"].split()
        if outcome == "failed":  # a failure in junit stands only for the requirements that failed
            assert all(results["requirements"][rid]["outcome"] == "failed" for rid in cited), check["id"]
    for rid, requirement in unreached.items():
        assert requirement["outcome"] == "not_checked"
        unreached_cases = [cid for cid, (outcome, props) in cases.items()
                           if props["requirements"].split() == [rid] and outcome == "not_checked"
                           and STOPPED in next(c["message"] for c in results["checks"] if c["id"] == cid)]
        assert unreached_cases, f"junit.xml shows no not-checked test case for {rid}"
    junit = (faulty.run.report_dir / "junit.xml").read_text(encoding="utf-8")
    assert '<skipped type="not_checked" message="not checked: test_properties.py::' in junit
    assert "NOT CHECKED" in faulty.run.stdout and STOPPED in faulty.run.stdout


def test_the_exchange_behind_each_failure_is_shown_in_the_report(faulty):
    """report.html shows the request and answer the curl reproduces, not only the curl."""
    report = html_text(faulty.run.report_dir)
    for check in faulty.failed_checks():
        assert f"GET {curl_url(check['curl'])}</b>" in report, check["id"]


def test_curls_carry_no_credential(faulty):
    for check in faulty.failed_checks():
        assert '"X-API-Key: $FREDDY_API_KEY"' in check["curl"]
        assert faulty.broken.fixture.api_key not in check["curl"]
