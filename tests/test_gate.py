"""A release gate that cannot pass by accident: an explicit target, --strict, baselines of known
failures, `conformance diff`, summary.md and the CI recipes. Runs go through the real CLI in a
subprocess, against the bundled reference or a reference server (conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from conformance import baseline, catalogue, config, gate
from conformance.results import CheckRecord, RunResult
from conformance.results_file import InputFileError, read_results
from conftest import SuiteRun, clean_env

ROOT = Path(__file__).resolve().parent.parent
CI_DIR = ROOT / "examples" / "ci"
PRODUCT = CI_DIR / "product.toml"
SHP03_CHECK = ["--", "-k", "test_playback_url_is_null"]
AUTH04_CHECK = ["--", "-k", "test_member_without_capability_gets_403"]
FAULT = "playback-url-filled"  # breaks SHP-03


def conformance(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], env=clean_env(env), cwd=cwd,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def write_baseline(path: Path, *entries: tuple[str, str, date]) -> Path:
    path.write_text("".join(f'[[known_failure]]\nid = "{rid}"\nreason = "{reason}"\nexpires = {expires}\n\n'
                            for rid, reason, expires in entries), encoding="utf-8")
    return path


def console_tail(run: SuiteRun) -> list[str]:
    return run.stdout.strip().splitlines()


NEXT_MONTH = date.today() + timedelta(days=30)
YESTERDAY = date.today() - timedelta(days=1)


# -- 1. explicit target ----------------------------------------------------------------------

def test_target_settings_come_from_the_settings_table():
    assert set(config.TARGET_NAMES) == {"base_url", "org", "api_key", "no_capability_api_key", "foreign_org",
                                        "second_user_api_key", "bearer_token", "revoked_api_key",
                                        "expired_bearer_token", "dataset"}
    assert {spec.name for spec in config.SETTINGS if spec.secret} <= set(config.TARGET_NAMES)


def test_empty_base_url_variable_with_an_org_is_a_configuration_error(tmp_path):
    result = conformance("run", "--report-dir", str(tmp_path / "r"),
                         env={"CONFORMANCE_BASE_URL": "", "CONFORMANCE_ORG_ID": "org_1"})
    assert result.returncode == 2
    line = one_line_error(result)
    assert "--org (CONFORMANCE_ORG_ID)" in line and "CONFORMANCE_BASE_URL is set but empty" in line
    assert "bundled reference" in line
    assert result.stdout == "" and not (tmp_path / "r" / "results.json").exists()


@pytest.mark.parametrize("name", [name for name in config.TARGET_NAMES if name != "base_url"])
def test_every_target_setting_without_a_base_url_is_a_configuration_error(tmp_path, name):
    spec = config.SPECS_BY_NAME[name]
    result = conformance("run", "--report-dir", str(tmp_path / "r"), env={spec.env: "value-1234567890"})
    assert result.returncode == 2
    assert spec.option in one_line_error(result)
    assert "value-1234567890" not in result.stderr


def test_the_bundled_reference_says_so_on_the_console_and_in_every_report(run_suite):
    run = run_suite(*AUTH04_CHECK)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert "testing the bundled reference deployment at" in run.stdout.splitlines()[0]
    assert re.search(r"^target: the bundled reference deployment at http://127\.0\.0\.1:\d+", run.stdout, re.MULTILINE)
    assert re.search(r"^verdict: INCOMPLETE .* - of the bundled reference deployment$", run.stdout, re.MULTILINE)
    assert re.search(r"^gate: PASS \(exit 0\): .* - target: the bundled reference deployment", run.stdout, re.MULTILINE)
    properties = {p.get("name"): p.get("value")
                  for p in ET.parse(run.report_dir / "junit.xml").getroot().find("testsuite/properties")}
    assert properties["target"].startswith("the bundled reference deployment at http://127.0.0.1:")
    html = (run.report_dir / "report.html").read_text(encoding="utf-8")
    assert "the bundled reference deployment at http://127.0.0.1:" in html
    assert "**the bundled reference deployment**" in (run.report_dir / "summary.md").read_text(encoding="utf-8")
    assert run.results["target"]["reference"] is True


# -- 2. --strict -----------------------------------------------------------------------------

def test_strict_makes_a_missing_key_exit_1_listing_the_musts(run_suite, reference):
    server = reference()
    missing = {"CONFORMANCE_NO_CAPABILITY_API_KEY": ""}
    lenient = run_suite(*AUTH04_CHECK, server=server, env=missing)
    assert (lenient.verdict, lenient.exit_code) == ("incomplete", 0)
    assert "allowed without --strict" in lenient.stdout

    strict = run_suite("--strict", *AUTH04_CHECK, server=server, env=missing)
    assert (strict.verdict, strict.exit_code) == ("incomplete", 1)
    strict_line = next(line for line in strict.stdout.splitlines() if line.startswith("strict: "))
    assert "AUTH-04" in strict_line and "--strict (CONFORMANCE_STRICT)" in strict_line
    assert "NOT CHECKED AUTH-04 [MUST]: not configured: set --no-capability-api-key" in strict.stdout
    assert re.search(r"^gate: FAIL \(exit 1\): \d+ MUSTs not checked \(--strict\)", strict.stdout, re.MULTILINE)

    from_environment = run_suite(*AUTH04_CHECK, server=server, env={**missing, "CONFORMANCE_STRICT": "1"})
    assert from_environment.exit_code == 1


def test_strict_under_plain_pytest_comes_from_the_environment(tmp_path, reference):
    from conformance.cli import CHECKS_DIR

    server = reference()
    env = {**server.suite_env(tmp_path), "CONFORMANCE_STRICT": "true", "CONFORMANCE_NO_CAPABILITY_API_KEY": ""}
    result = subprocess.run([sys.executable, "-m", "pytest", str(CHECKS_DIR), "-q", "-p", "no:cacheprovider",
                             "--report-dir", str(tmp_path / "r"), "-k", "test_member_without_capability_gets_403"],
                            env=clean_env(env), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                            check=False)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "strict: " in result.stdout and (tmp_path / "r" / "summary.md").is_file()


# -- 3. baselines ----------------------------------------------------------------------------

def test_a_baseline_written_from_a_failing_run_makes_it_pass_until_it_expires(run_suite, reference, tmp_path):
    server = reference(behaviour=FAULT)
    failing = run_suite(*SHP03_CHECK, server=server)
    assert failing.exit_code == 1 and failing.outcome("SHP-03") == "failed"

    written = conformance("baseline", str(failing.report_dir / "results.json"))
    assert written.returncode == 0, written.stderr
    known = baseline.load(write_text(tmp_path / "baseline.toml", written.stdout))
    assert [entry.id for entry in known] == ["SHP-03"]
    assert known[0].expires == date.today() + timedelta(days=30)
    assert "playback_url" in known[0].reason

    accepted = run_suite("--baseline", str(tmp_path / "baseline.toml"), *SHP03_CHECK, server=server)
    assert accepted.exit_code == 0, accepted.stdout[-3000:]
    assert accepted.verdict == "nonconformant"  # the reports still tell the truth
    assert "KNOWN failure (listed; does not fail the gate): SHP-03" in accepted.stdout
    assert re.search(r"^gate: PASS \(exit 0\): verdict NONCONFORMANT; .*1 known MUST failure", accepted.stdout,
                     re.MULTILINE)

    expired = write_baseline(tmp_path / "expired.toml", ("SHP-03", "accepted until yesterday", YESTERDAY))
    run = run_suite("--baseline", str(expired), *SHP03_CHECK, server=server)
    assert run.exit_code == 1
    assert f"EXPIRED entry (fix the failure or renew the entry): SHP-03 (expires {YESTERDAY})" in run.stdout


def test_a_new_failure_or_an_entry_no_longer_failing_fails_the_gate(run_suite, reference, tmp_path):
    other = write_baseline(tmp_path / "other.toml", ("ORD-01", "sorted by id until the migration", NEXT_MONTH))
    new = run_suite("--baseline", str(other), *SHP03_CHECK, server=reference(behaviour=FAULT))
    assert new.exit_code == 1
    assert "NEW failure, not in the baseline: SHP-03 [MUST]" in new.stdout
    assert "NOT CONFIRMED (not judged in this run; kept): ORD-01" in new.stdout

    listed = write_baseline(tmp_path / "listed.toml", ("SHP-03", "signed URLs until PLAT-1", NEXT_MONTH))
    fixed = run_suite("--baseline", str(listed), *SHP03_CHECK, server=reference())
    assert fixed.exit_code == 1
    assert "NO LONGER FAILING (passed now; remove it from the baseline): SHP-03" in fixed.stdout
    assert "1 baseline entry no longer failing" in fixed.stdout


@pytest.mark.parametrize("text, named", [
    ("known_failure = [", "not valid TOML"),
    ('[[known_failure]]\nid = "NOPE-01"\nreason = "r"\nexpires = 2030-01-01\n', "not a requirement"),
    ('[[known_failure]]\nid = "SHP-03"\nreason = "r"\n', "has no 'expires'"),
    ('[[known_failure]]\nid = "SHP-03"\nreason = "r"\nexpires = "soon"\n', "expires must be a date"),
    ('[[known_failure]]\nid = "SHP-03"\nreason = ""\nexpires = 2030-01-01\n', "reason must be text"),
    ('[[known_failure]]\nid = "SHP-03"\nreason = "r"\nexpires = 2030-01-01\nexpiry = 1\n', "unknown key 'expiry'"),
    ('[[known_failure]]\nid = "SHP-03"\nreason = "r"\nexpires = 2030-01-01\n' * 2, "listed twice"),
    ("[other]\n", "unknown key 'other'"),
    ("\x1b[2J = 1\n", "not valid TOML"),
])
def test_a_bad_baseline_is_a_one_line_configuration_error_before_anything_is_sent(tmp_path, text, named):
    path = write_text(tmp_path / "baseline.toml", text)
    result = conformance("run", "--baseline", str(path), "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    line = one_line_error(result)
    assert "--baseline (CONFORMANCE_BASELINE)" in line and named in line
    assert "\x1b" not in line and result.stdout == ""


def test_a_baseline_larger_than_the_cap_or_missing_is_refused(tmp_path):
    huge = tmp_path / "huge.toml"
    with open(huge, "wb") as handle:
        handle.truncate(baseline.BASELINE_FILE_CAP + 1)
    with pytest.raises(InputFileError, match="larger than 1 MiB"):
        baseline.load(huge)
    with pytest.raises(InputFileError, match="no such file"):
        baseline.load(tmp_path / "missing.toml")


def test_certify_refuses_a_baseline(tmp_path):
    listed = write_baseline(tmp_path / "b.toml", ("SHP-03", "r", NEXT_MONTH))
    result = conformance("run", "--profile", "certify", "--product", str(PRODUCT), "--baseline", str(listed),
                         "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "--baseline (CONFORMANCE_BASELINE) is not allowed with --profile certify" in one_line_error(result)


def test_baseline_command_shows_untrusted_values_and_writes_valid_toml(tmp_path):
    results = hand_written_results(tmp_path / "results.json", reason='a "quoted" \\ reason\x1b[2J\u202e\nVERDICT: OK')
    written = conformance("baseline", str(results), "--expires", "2031-02-03")
    assert written.returncode == 0, written.stderr
    assert "\x1b" not in written.stdout and "\u202e" not in written.stdout
    (entry,) = baseline.load(write_text(tmp_path / "b.toml", written.stdout))
    assert entry.expires == date(2031, 2, 3)
    assert entry.reason == 'a "quoted" \\ reason\\x1b[2J\\u202e\\nVERDICT: OK'
    assert conformance("baseline", str(results), "--expires", "7").returncode == 0
    past = conformance("baseline", str(results), "--expires", "2001-01-01")
    assert past.returncode == 2 and "in the past" in past.stderr


@pytest.mark.parametrize("content, named", [
    (b"{nope", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"verdict": "fine", "requirements": {}}', "'verdict'"),
    (b'{"verdict": "conformant", "requirements": {"SHP-03": {"level": "MUST", "outcome": "meh"}}}', "outcome"),
    (b'{"verdict": "conformant", "requirements": {"\\u001b[2J": {}}}', "is not a requirement id"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
])
def test_unreadable_or_wrong_shaped_results_are_one_line_errors(tmp_path, content, named):
    path = tmp_path / "results.json"
    path.write_bytes(content)
    for command in (["baseline", str(path)], ["diff", str(path), str(path)]):
        result = conformance(*command)
        assert result.returncode == 2
        line = one_line_error(result)
        assert named in line and "\x1b" not in line


def test_results_larger_than_the_cap_are_refused(tmp_path):
    from conformance.results_file import RESULTS_FILE_CAP

    huge = tmp_path / "results.json"
    with open(huge, "wb") as handle:
        handle.truncate(RESULTS_FILE_CAP + 1)
    result = conformance("diff", str(huge), str(huge))
    assert result.returncode == 2 and "larger than 32 MiB" in one_line_error(result)


# -- the gate's exit code, from the result model -----------------------------------------------

def run_result(*outcomes: tuple[str, str]) -> RunResult:
    result = RunResult(base_url="https://api.example.com", organization_id="org_1", reference=False,
                       configuration={})
    result.checks = [CheckRecord(f"test_x.py::test_{rid}", (rid,), outcome) for rid, outcome in outcomes]  # type: ignore[arg-type]
    return result


def everything(outcome: str = "passed", **overrides: str) -> list[tuple[str, str]]:
    return [(rid, overrides.get(rid.replace("-", "_"), outcome)) for rid in catalogue.REQUIREMENTS]


@pytest.mark.parametrize("outcomes", [
    everything(), everything(SHP_03="failed"), everything(SHP_03="error"), everything(SHP_03="not_checked"),
    everything(SHP_03="failed", ORD_01="error"), everything(SHP_07="failed"),
])
def test_without_strict_or_baseline_the_gate_exits_as_the_verdict(outcomes):
    result = run_result(*outcomes)
    assert gate.decide(result, config.Settings()).exit_code == result.exit_code()


def test_known_failures_leave_errors_and_strictness_in_force(tmp_path):
    listed = write_baseline(tmp_path / "b.toml", ("SHP-03", "r", NEXT_MONTH))
    with_error = run_result(*everything(SHP_03="failed", ORD_01="error"))
    assert gate.decide(with_error, config.Settings(baseline=listed)).exit_code == 3
    unchecked = run_result(*everything(SHP_03="failed", ORD_01="not_checked"))
    assert gate.decide(unchecked, config.Settings(baseline=listed)).exit_code == 0
    assert gate.decide(unchecked, config.Settings(baseline=listed, strict=True)).exit_code == 1


# -- 4. summaries ----------------------------------------------------------------------------

def test_every_run_writes_summary_md_and_appends_it_to_the_github_step_summary(run_suite, reference, tmp_path):
    step_summary = write_text(tmp_path / "step-summary.md", "# from an earlier step\n")
    run = run_suite(*SHP03_CHECK, server=reference(behaviour=FAULT), env={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert run.exit_code == 1
    summary = (run.report_dir / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("## API conformance: NONCONFORMANT")
    assert re.search(r"^\| SHP-03 \| MUST \| failed \| .* \| .*playback\\_url", summary, re.MULTILINE)
    assert "### Not checked" in summary and "\n| DAT-01 | MUST | " in summary
    assert re.search(r"```sh\ncurl -sS -i 'http://127\.0\.0\.1:\d+/v1/music/[^']*' "
                     r'-H "X-API-Key: \$FREDDY_API_KEY"', summary)
    assert "gate: FAIL (exit 1): verdict NONCONFORMANT" in summary
    assert step_summary.read_text(encoding="utf-8") == "# from an earlier step\n" + summary + "\n"

    tail = console_tail(run)
    artifacts = tail[tail.index("artifacts:"):]
    assert [line.strip().rsplit("/", 1)[-1] for line in artifacts[1:5]] == [
        "report.html", "junit.xml", "results.json", "summary.md"]
    assert artifacts[5] == f"  summary.md appended to $GITHUB_STEP_SUMMARY ({step_summary})"
    assert len(artifacts) == 6  # the artifacts are the console's last lines


def test_summary_md_cannot_be_broken_by_untrusted_text():
    from conformance import summary

    hostile = "x | y `z` [link](https://evil.example) <img src=x onerror=alert(1)> *b* \x1b[2J\ntwo"
    escaped = summary.text(hostile)
    assert "|" not in escaped.replace("\\|", "") and "<img" not in escaped and "](" not in escaped.replace("\\](", "")
    assert "\n" not in escaped and "\x1b" not in escaped
    fence = summary.fenced("curl 'http://h/```'\n```\nrm -rf /", "sh")
    opening = fence.split("sh\n", 1)[0]
    assert len(opening) > 3 and fence.endswith("\n" + opening)


# -- diff ------------------------------------------------------------------------------------

def test_diff_names_regressions_and_fixes_and_exits_1_on_a_regression(run_suite, reference):
    clean = run_suite(*SHP03_CHECK, server=reference())
    broken = run_suite(*SHP03_CHECK, server=reference(behaviour=FAULT))
    old, new = str(clean.report_dir / "results.json"), str(broken.report_dir / "results.json")

    regressed = conformance("diff", old, new)
    assert regressed.returncode == 1, regressed.stderr
    assert "verdict: INCOMPLETE -> NONCONFORMANT" in regressed.stdout
    assert re.search(r"^regressed \(1\):\n  SHP-03 \[MUST\] passed -> failed: .*playback_url", regressed.stdout,
                     re.MULTILINE)
    assert "REGRESSION" in regressed.stdout.splitlines()[-1]

    markdown = conformance("diff", old, new, "--format", "markdown")
    assert markdown.returncode == 1
    assert markdown.stdout.startswith("## Conformance diff: INCOMPLETE → NONCONFORMANT")
    assert "### Regressed (1)" in markdown.stdout and re.search(r"^\| SHP-03 \| MUST \| passed \| failed \|",
                                                                markdown.stdout, re.MULTILINE)

    fixed = conformance("diff", new, old)
    assert fixed.returncode == 0
    assert "fixed (1):\n  SHP-03 [MUST] failed -> passed" in fixed.stdout and "regressed: none" in fixed.stdout


def test_diff_shows_untrusted_values_and_reports_other_changes(tmp_path):
    old = hand_written_results(tmp_path / "old.json", outcome="passed", reason=None)
    new = hand_written_results(tmp_path / "new.json", outcome="failed", reason="boom\x1b]0;pwned\x07 | `x`",
                               extra={"STA-04": {"level": "SHOULD", "outcome": "failed", "reason": "warn"}})
    text = conformance("diff", str(old), str(new))
    assert text.returncode == 1
    assert "SHP-03 [MUST] passed -> failed: boom\\x1b]0;pwned\\x07 | `x`" in text.stdout
    assert "changed (1):\n  STA-04 [SHOULD] absent -> failed: warn" in text.stdout
    markdown = conformance("diff", str(old), str(new), "--format", "markdown").stdout
    assert "| SHP-03 | MUST | passed | failed | boom\\\\x1b\\]0;pwned\\\\x07 \\| \\`x\\` |" in markdown
    assert "\x1b" not in markdown


def hand_written_results(path: Path, *, outcome: str = "failed", reason: str | None = "broken",
                         extra: dict | None = None) -> Path:
    requirements = {"SHP-03": {"level": "MUST", "text": "t", "outcome": outcome, "reason": reason, "checks": []},
                    **(extra or {})}
    document = {"verdict": "nonconformant" if outcome == "failed" else "conformant",
                "target": {"base_url": "https://api.example.com\x1b[2J", "reference": False},
                "started_at": "2030-01-01T00:00:00.000Z", "requirements": requirements}
    path.write_text(json.dumps(document), encoding="utf-8")
    read_results(path)  # the shape the suite accepts
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- 5. recipes ------------------------------------------------------------------------------

def recipe(name: str) -> dict:
    return yaml.safe_load((CI_DIR / name).read_text(encoding="utf-8"))


def strings(document: object) -> list[str]:
    """Every string of a YAML document, a folded or literal block as one string."""
    if isinstance(document, dict):
        return [text for value in document.values() for text in strings(value)]
    if isinstance(document, list):
        return [text for value in document for text in strings(value)]
    return [document] if isinstance(document, str) else []


def run_commands(document: object) -> list[str]:
    return [" ".join(text.split()) for text in strings(document) if "conformance run" in text]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_recipes_gate_with_strict_and_install_from_one_marked_variable(name):
    document = recipe(name)
    commands = run_commands(document)
    assert commands and all("--strict" in command for command in commands), commands
    text = (CI_DIR / name).read_text(encoding="utf-8")
    assert re.search(r"# >>> EDIT: where the suite is installed from.*\n(  #.*\n)*  CONFORMANCE_SUITE: ", text)
    assert "wheel" in text and "git+https://" in text
    assert "--baseline" in text and "conformance baseline" in text and "--dataset-out" in text
    installs = [line for line in strings(document) if "pip install" in line]
    assert installs and all('"$CONFORMANCE_SUITE"' in line for line in installs)


def test_github_recipe_publishes_junit_with_a_reporter_action():
    job = recipe("github-actions.yml")["jobs"]["conformance"]
    reporters = [step for step in job["steps"] if step.get("uses", "").startswith("mikepenz/action-junit-report@")]
    assert len(reporters) == 1 and reporters[0]["if"] == "always()"
    assert reporters[0]["with"]["report_paths"] == "reports/junit.xml"
    assert job["permissions"]["checks"] == "write"


def test_gitlab_recipe_publishes_junit_as_a_test_report():
    assert recipe("gitlab-ci.yml")[".conformance"]["artifacts"]["reports"]["junit"] == "reports/junit.xml"
