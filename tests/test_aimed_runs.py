"""Aimed runs: --requirement and --last-failed select checks, and pytest's own deselection (-k)
never makes checks silently absent or passed: whatever is not selected is not checked, "not
selected", in results.json, junit.xml and report.html; a selection of nothing is a usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import CHECKS_DIR
from conftest import SuiteRun, clean_env
from tests.test_reports import html_matrix, junit_cases

NOT_SELECTED = "not selected"
ROOT = Path(__file__).resolve().parents[1]


def ran_checks(results: dict) -> list[dict]:
    """The checks that ran (not the not-selected ones, nor what a failed check did not reach)."""
    return [check for check in results["checks"]
            if check["message"] != NOT_SELECTED and "stopped at a failure of" not in (check["message"] or "")]


def assert_not_selected_everywhere(run: SuiteRun) -> None:
    """Every check that did not run is not checked, 'not selected', in every artifact, and so is
    every requirement with a check that did not run: never passed, never silently absent."""
    results = run.results
    cases = junit_cases(run.report_dir)
    junit = (run.report_dir / "junit.xml").read_text(encoding="utf-8")
    skipped = [check for check in results["checks"] if check["message"] == NOT_SELECTED]
    assert skipped, "nothing was deselected"
    for check in skipped:
        assert check["outcome"] == "not_checked"
        assert cases[check["id"]][0] == "not_checked"
    assert f'type="not_checked" message="not checked: {NOT_SELECTED}"' in junit
    matrix = html_matrix(run.report_dir)
    covered = {rid for check in ran_checks(results) for rid in check["requirements"]}
    for rid, requirement in results["requirements"].items():
        assert matrix[rid] == requirement["outcome"]
        if rid not in covered:
            assert requirement["outcome"] == "not_checked", rid
            assert requirement["reason"] in (NOT_SELECTED, "no check for it ran in this run"), rid
        elif any(rid in check["requirements"] for check in skipped):
            assert requirement["outcome"] != "passed", rid


def test_requirement_globs_select_the_checks_citing_them(run_suite, reference):
    run = run_suite("--requirement", "AUTH-0[1-3]", "--requirement", "lim-04", server=reference())
    assert run.exit_code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    ran = ran_checks(run.results)
    assert ran and all({"AUTH-01", "AUTH-02", "AUTH-03", "LIM-04"} & set(check["requirements"]) for check in ran)
    for rid in ("AUTH-01", "AUTH-02", "AUTH-03", "LIM-04"):
        assert run.outcome(rid) == "passed"
    assert_not_selected_everywhere(run)
    assert run.results["configuration"]["requirement"] == "AUTH-0[1-3],LIM-04"


def test_requirement_from_the_environment_is_comma_separated(run_suite, reference):
    run = run_suite(server=reference(), env={"CONFORMANCE_REQUIREMENT": "OFF-01, OFF-05"})
    assert run.exit_code == 0
    assert {"OFF-01", "OFF-05"} <= run.outcomes("passed")
    assert_not_selected_everywhere(run)


@pytest.mark.parametrize("value", ["AUTH-99", "NOPE-*"])
def test_unknown_requirement_is_a_usage_error(run_suite, value):
    run = run_suite("--requirement", value)
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--requirement" in lines[0] and "names no requirement" in lines[0], run.stderr


def test_deselecting_everything_is_a_usage_error_that_writes_nothing(run_suite, reference, tmp_path):
    server = reference()
    first = run_suite(server=server)
    reports = ("results.json", "junit.xml", "report.html")
    before = [(first.report_dir / name).read_bytes() for name in reports]
    # The same report folder: a run that selects nothing leaves the previous reports alone.
    again = subprocess.run([sys.executable, "-m", "conformance", "run", "--report-dir", str(first.report_dir),
                            "--", "-k", "LIM-02"], check=False, env=clean_env(server.suite_env(tmp_path)), cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert again.returncode == 2, again.stdout[-2000:] + again.stderr[-2000:]
    assert "no check selected: -k 'LIM-02' left none of the" in again.stderr
    assert "use --requirement LIM-02" in again.stderr
    assert "verdict" not in again.stdout.lower()
    assert [(first.report_dir / name).read_bytes() for name in reports] == before


def test_pytest_deselection_reports_the_rest_not_selected(run_suite, reference):
    run = run_suite("--", "-k", "limit and not echoed", server=reference())
    assert run.exit_code == 0, run.stdout[-2000:]
    assert_not_selected_everywhere(run)


def test_last_failed_runs_again_what_failed_or_says_there_is_nothing(run_suite, reference):
    broken = reference(behaviour="limit-off-by-one")
    first = run_suite(server=broken)
    assert first.exit_code == 1
    failed = {check["id"] for check in first.results["checks"] if check["outcome"] in ("failed", "error")}
    rerun = run_suite("--report-dir", str(first.report_dir), "--last-failed", server=broken)
    again = SuiteRun(rerun.exit_code, rerun.stdout, rerun.stderr, first.report_dir)
    ran = {check["id"] for check in ran_checks(again.results)}
    assert ran == failed, again.stdout[-2000:]
    assert f"last-failed: running the {len(failed)} checks that failed" in again.stdout
    assert_not_selected_everywhere(again)

    fresh = run_suite("--last-failed", server=reference())
    assert "last-failed: no previous results in" in fresh.stdout and "running every check" in fresh.stdout
    assert fresh.exit_code == 0 and fresh.verdict == "conformant"


def test_plain_pytest_selects_by_requirement_and_refuses_an_empty_selection(reference, tmp_path):
    env = clean_env(reference().suite_env(tmp_path))

    def pytest_run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", str(CHECKS_DIR), "--report-dir", str(tmp_path / "r"),
                               *args], check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)

    aimed = pytest_run("--requirement", "STA-0*")
    assert aimed.returncode == 0, aimed.stdout[-2000:] + aimed.stderr[-2000:]
    results = json.loads(Path(tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert {rid for rid, r in results["requirements"].items() if r["outcome"] == "passed"} == {
        "STA-01", "STA-02", "STA-03", "STA-04"}
    empty = pytest_run("-k", "no_such_check")
    assert empty.returncode == pytest.ExitCode.USAGE_ERROR
    assert "no check selected: -k 'no_such_check'" in empty.stderr


@pytest.mark.parametrize("option", [["--requirement", "AUTH-01"], ["--last-failed"]])
def test_certification_refuses_a_narrowed_run(run_suite, option):
    run = run_suite("--profile", "certify", "--product", str(ROOT / "examples" / "ci" / "product.toml"), *option)
    assert run.exit_code == 2
    assert f"{option[0]} (CONFORMANCE_" in run.stderr and "--profile certify runs every check" in run.stderr
