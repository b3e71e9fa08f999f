"""Reports people act on: the three artifacts agree, report.html carries the evidence, and no
credential survives anywhere, even when the deployment echoes it back."""

from __future__ import annotations

import dataclasses
import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance import schemas
from conformance.reference.behaviour import Behaviour, ErrorSpec

JUNIT_OUTCOME = {"failure": "failed", "error": "error"}


class LeakyAndBroken(Behaviour):
    """Echoes the presented key in 401 bodies, in a header and in every page; fills
    playback_url (breaks SHP-03, a MUST) and drops refusal_reason (breaks SHP-07, a SHOULD)."""

    def authenticate(self, request, db):
        result = super().authenticate(request, db)
        if isinstance(result, ErrorSpec):
            key = request.headers.get("x-api-key", "")
            return dataclasses.replace(result, message=f"Invalid API key {key}", details={"key": key})
        return result

    def render_job(self, row):
        job = super().render_job(row)
        job["playback_url"] = "https://cdn.example.invalid/track.mp3"
        if job["status"] == "refused":
            job["refusal_reason"] = None
        return job

    def finalize(self, request, response):
        response = super().finalize(request, response)
        response.headers["x-echo-key"] = request.headers.get("x-api-key", "")
        response.headers["x-echo-authorization"] = request.headers.get("authorization", "")
        return response


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """One run with a failed MUST, a failed SHOULD and a not-checked requirement."""
    import subprocess
    import sys

    from conformance.reference import ReferenceServer
    from conftest import SuiteRun, clean_env, reference_env

    workdir = tmp_path_factory.mktemp("broken")
    with ReferenceServer(behaviour=LeakyAndBroken()) as server:
        env = reference_env(server, workdir)
        env["CONFORMANCE_SECOND_USER_API_KEY"] = ""
        completed = subprocess.run([sys.executable, "-m", "conformance", "run", "--report-dir", str(workdir / "r")],
                                   env=clean_env(env), cwd=workdir, capture_output=True, text=True, timeout=300,
                                   stdin=subprocess.DEVNULL)
        fixture = server.fixture
    secrets = [fixture.api_key, fixture.no_capability_api_key, fixture.second_user_api_key, fixture.bearer_token,
               fixture.revoked_api_key, fixture.expired_bearer_token]
    return SuiteRun(completed.returncode, completed.stdout, completed.stderr, workdir / "r"), workdir, secrets


def junit_cases(report_dir: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """check id -> (outcome as results.json names it, properties)."""
    cases = {}
    for case in ET.parse(report_dir / "junit.xml").getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcome = "passed"
        for child in case:
            if child.tag in JUNIT_OUTCOME:
                outcome = JUNIT_OUTCOME[child.tag]
            elif child.tag == "skipped":
                outcome = "failed" if child.get("type") == "warning" else "not_checked"
        check_id = f"{case.get('classname').rsplit('.', 1)[-1]}.py::{case.get('name')}"
        cases[check_id] = (outcome, properties)
    return cases


def html_text(report_dir: Path) -> str:
    """The report as a reader sees it: pytest-html keeps each check's details HTML-escaped in a
    JSON blob inside an attribute, so unescape twice."""
    raw = (report_dir / "report.html").read_text(encoding="utf-8")
    return html.unescape(html.unescape(raw)).replace('\\"', '"')


def html_matrix(report_dir: Path) -> dict[str, str]:
    rows = re.findall(r'data-requirement="([A-Z-0-9]+)" data-outcome="(\w+)"', html_text(report_dir))
    return dict(rows)


def test_canary_credentials_appear_nowhere(broken_run):
    run, workdir, secrets = broken_run
    assert run.verdict == "nonconformant"
    outputs = {"stdout": run.stdout, "stderr": run.stderr}
    files = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.name == "report.html" for path in files)
    for secret in secrets:
        for needle in (secret, secret[:-1]):
            for name, text in outputs.items():
                assert needle not in text, f"a credential leaked into {name}"
            for path in files:
                assert needle.encode() not in path.read_bytes(), f"a credential leaked into {path}"


def test_echoed_keys_are_shown_redacted(broken_run):
    run, _, _ = broken_run
    text = html_text(run.report_dir)
    assert "x-echo-key: ***" in text
    assert "Invalid API key ***" in text


def test_results_json_validates_against_its_schema(broken_run):
    run, _, _ = broken_run
    errors = list(schemas.validator("results.schema.json").iter_errors(run.results))
    assert errors == []


def test_artifacts_agree_on_every_check_and_requirement(broken_run):
    run, _, _ = broken_run
    results = run.results
    outcomes = {r["outcome"] for r in results["requirements"].values()}
    assert {"passed", "failed", "not_checked"} <= outcomes
    assert results["requirements"]["SHP-07"] == {**results["requirements"]["SHP-07"], "level": "SHOULD",
                                                  "outcome": "failed"}
    cases = junit_cases(run.report_dir)
    assert len(cases) == len(results["checks"])
    for check in results["checks"]:
        outcome, properties = cases[check["id"]]
        assert outcome == check["outcome"], check["id"]
        assert properties["requirements"].split() == check["requirements"]
    assert html_matrix(run.report_dir) == {rid: r["outcome"] for rid, r in results["requirements"].items()}
    root = ET.parse(run.report_dir / "junit.xml").getroot()
    verdict = {p.get("name"): p.get("value") for p in root.iter("property")}["verdict"]
    assert verdict == results["verdict"] == "nonconformant"
    assert f"Verdict: {results['verdict'].upper()}" in html_text(run.report_dir)


def test_failed_should_is_a_warning_not_a_junit_failure(broken_run):
    run, _, _ = broken_run
    cases = junit_cases(run.report_dir)
    should_cases = [props for cid, (outcome, props) in cases.items() if "SHP-07" in props["requirements"]]
    assert should_cases and all(props["level"] == "SHOULD" for props in should_cases)
    junit = (run.report_dir / "junit.xml").read_text()
    assert 'type="warning" message="SHOULD not met' in junit
    failures = re.findall(r'<testcase [^>]*name="([^"]+)"[^>]*>\s*<properties>(?:(?!</testcase>).)*<failure', junit,
                          flags=re.S)
    assert failures and not any("unsuccessful_jobs_explain" in name for name in failures)


def test_report_shows_what_failed_and_how_to_reproduce_it(broken_run):
    run, _, _ = broken_run
    text = html_text(run.report_dir)
    assert 'data-requirement="SHP-03" data-outcome="failed"' in text
    assert "playback_url is 'https://cdn.example.invalid/track.mp3'" in text
    assert re.search(r"curl -sS -i 'http://127\.0\.0\.1:\d+/v1/music/org_ref_main/generations[^']*' "
                     r'-H "X-API-Key: \$FREDDY_API_KEY"', text)
    assert "X-API-Key: ***" in text
    matrix = text.index('id="cf-requirements"')
    assert text.index('data-outcome="failed"', matrix) < text.index('data-outcome="not_checked"', matrix) \
        < text.index('data-outcome="passed"', matrix)
    assert "not configured: set --second-user-api-key" in text


def test_console_ends_with_verdict_failures_and_report_path(broken_run):
    run, _, _ = broken_run
    tail = run.stdout[run.stdout.index("conformance verdict"):]
    assert "verdict: NONCONFORMANT" in tail
    assert "SHP-03 [MUST]" in tail and "SHP-07 [SHOULD]" in tail
    assert f"report: {run.report_dir / 'report.html'}" in tail


def test_passing_report_says_conformant_with_every_requirement_passed(run_suite):
    run = run_suite()
    text = html_text(run.report_dir)
    assert "Verdict: CONFORMANT" in text
    matrix = html_matrix(run.report_dir)
    assert len(matrix) == len(run.results["requirements"]) and set(matrix.values()) == {"passed"}
    assert "(bundled reference deployment)" in text
