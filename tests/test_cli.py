"""The CLI as a user meets it: exit codes, one-line errors, the verdict against the reference."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from conftest import clean_env


def conformance(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], env=clean_env(env), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_default_run_against_the_reference_is_conformant_with_everything_checked(run_suite):
    run = run_suite()
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.verdict == "conformant"
    assert run.outcomes("passed") == set(run.results["requirements"])
    assert run.results["target"]["reference"] is True
    assert "verdict: CONFORMANT" in run.stdout
    assert (run.report_dir / "report.html").is_file() and (run.report_dir / "junit.xml").is_file()


def test_unreachable_target_exits_3_with_one_line(tmp_path):
    result = conformance("run", "--base-url", "http://127.0.0.1:9", "--org", "o", "--api-key", "k",
                         "--report-dir", str(tmp_path))
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "target unreachable" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert "FAILED" not in result.stdout


@pytest.mark.parametrize("args, named", [
    (["--base-url", "ftp://x"], "--base-url"),
    (["--base-url", "http://x", "--api-key", "k"], "--org"),
    (["--base-url", "http://x", "--org", "o"], "--api-key"),
    (["--dataset", "/nonexistent/dataset.json"], "--dataset"),
    (["--config", "/nonexistent/conformance.toml"], "--config"),
])
def test_bad_configuration_exits_2_naming_the_setting(tmp_path, args, named):
    result = conformance("run", *args, "--report-dir", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert result.stdout == ""


def test_environment_configures_the_run(tmp_path):
    result = conformance("run", "--report-dir", str(tmp_path),
                         env={"CONFORMANCE_BASE_URL": "ftp://from-env"})
    assert result.returncode == 2 and "CONFORMANCE_BASE_URL" in result.stderr


def test_nonconformant_deployment_exits_1_and_names_the_requirement(run_suite, reference):
    run = run_suite(server=reference(behaviour="playback-url-filled"))
    assert run.exit_code == 1
    assert run.verdict == "nonconformant"
    assert run.outcome("SHP-03") == "failed"
    assert "SHP-03" in run.stdout and "verdict: NONCONFORMANT" in run.stdout


def test_missing_credentials_are_not_checked_naming_the_option(run_suite, reference):
    server = reference()
    env = {"CONFORMANCE_NO_CAPABILITY_API_KEY": "", "CONFORMANCE_SECOND_USER_API_KEY": "",
           "CONFORMANCE_BEARER_TOKEN": "", "CONFORMANCE_FOREIGN_ORG_ID": "", "CONFORMANCE_DATASET": ""}
    run = run_suite(server=server, env=env)
    requirements = run.results["requirements"]
    for rid, option in (("AUTH-04", "--no-capability-api-key"), ("ISO-01", "--second-user-api-key"),
                        ("AUTH-07", "--bearer-token"), ("DAT-01", "--dataset")):
        assert requirements[rid]["outcome"] == "not_checked"
        assert option in requirements[rid]["reason"]
    assert run.verdict == "incomplete" and run.exit_code == 0


@pytest.mark.parametrize("command", [["--help"], ["run", "--help"], ["serve", "--help"]])
def test_help_is_useful(command):
    result = conformance(*command)
    assert result.returncode == 0
    assert "usage: conformance" in result.stdout


def test_run_help_lists_every_setting_and_exit_codes():
    from conformance.config import SETTINGS

    text = conformance("run", "--help").stdout
    assert all(spec.option in text for spec in SETTINGS)
    assert "exit codes" in text


def test_faults_lists_names_and_requirement_ids():
    result = conformance("faults")
    assert result.returncode == 0
    assert "offset-off-by-one" in result.stdout and "OFF-02" in result.stdout


def test_plain_pytest_refuses_certify_rather_than_skipping_the_bundle(tmp_path):
    from conformance.cli import CHECKS_DIR

    result = subprocess.run([sys.executable, "-m", "pytest", str(CHECKS_DIR), "--profile", "certify",
                             "--report-dir", str(tmp_path)], env=clean_env(), capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "use 'conformance run --profile certify'" in result.stderr


def test_output_cut_short_by_the_reader_ends_quietly():
    listing = subprocess.Popen([sys.executable, "-m", "conformance", "faults"], env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    listing.stdout.close()  # before the CLI has started writing, so its writes hit a closed pipe
    assert listing.wait(timeout=60) == 0
    assert b"Traceback" not in listing.stderr.read()


def test_requirements_lists_every_id_with_level_and_text_one_per_line():
    from conformance import catalogue

    result = conformance("requirements")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"contract {catalogue.CONTRACT_VERSION} " in lines[0]
    rows = [line.split(None, 2) for line in lines[1:]]
    assert [row[0] for row in rows] == list(catalogue.REQUIREMENTS)
    assert rows[-1] == ["DAT-01", "MUST", catalogue.get("DAT-01").text]
    assert ["AUTH-08", "MUST", catalogue.get("AUTH-08").text] in rows


def test_requirements_as_json_carry_groups_version_and_digest():
    import json

    from conformance import catalogue

    result = conformance("requirements", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["contract"]["version"] == catalogue.CONTRACT_VERSION == "1.1"
    assert document["contract"]["sha256"] == catalogue.contract_digest()
    assert len(document["requirements"]) == 39
    assert document["requirements"][0] == {"id": "AUTH-01", "level": "MUST",
                                           "group": "Authentication and authorization",
                                           "text": catalogue.get("AUTH-01").text}
    assert {r["group"] for r in document["requirements"]} >= {"Robustness", "Oracle (optional)"}


# -- the small things a demanding user notices: one line each, exit 2, no Python internals -----

@pytest.mark.parametrize("args, said", [
    (["serve", "--port", "99999"], "is not a port"),
    (["serve", "--jobs", "-5"], "is not a number of jobs"),
    (["serve", "--latency", "soon"], "is not a number"),
    (["run", "--max-rps", "0"], "must be more than 0"),
    (["run", "--concurrency", "abc"], "is not a whole number"),
    (["run", "--seed", "1.5"], "is not a whole number"),
    (["run", "--", "--no-such-pytest-option"], "unrecognized arguments"),
])
def test_bad_values_exit_2_in_words(tmp_path, args, said):
    if args[0] == "run":
        args = [args[0], "--report-dir", str(tmp_path / "r"), *args[1:]]
    result = conformance(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert said in result.stderr
    assert "invalid literal" not in result.stderr and "Traceback" not in result.stderr


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "conformance", "serve", *args], env=clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _banner(process: subprocess.Popen[str]) -> list[str]:
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            return lines
    raise AssertionError(f"no banner: {lines} {process.stderr.read() if process.stderr else ''}")


def test_serve_writes_the_dataset_and_exports_every_credential_and_refuses_a_busy_port(tmp_path):
    dataset = tmp_path / "dataset.json"
    first = _serve("--port", "0", "--jobs", "12", "--latency", "5", "--dataset-out", str(dataset))
    try:
        banner = _banner(first)
        port = int(next(line for line in banner if line.startswith("base URL")).rsplit(":", 1)[1])
        exports = [line for line in banner if line.startswith("export ")]
        assert {line.split("=", 1)[0].removeprefix("export ") for line in exports} >= {
            "FREDDY_API_KEY", "CONFORMANCE_NO_CAPABILITY_API_KEY", "CONFORMANCE_SECOND_USER_API_KEY",
            "CONFORMANCE_BEARER_TOKEN", "CONFORMANCE_REVOKED_API_KEY", "CONFORMANCE_EXPIRED_BEARER_TOKEN"}
        written = json.loads(dataset.read_text(encoding="utf-8"))
        assert len(written["jobs"]) == 12 and written["organization_id"]
        busy = conformance("serve", "--port", str(port), timeout=60)
        assert busy.returncode == 2 and "in use" in busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1 and "Traceback" not in busy.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 0


@pytest.mark.parametrize("wrong", ["api_key", "org"])
def test_a_refused_main_credential_ends_the_run_before_any_check(run_suite, reference, tmp_path, wrong):
    server = reference(jobs=20)
    env = server.suite_env(tmp_path)
    if wrong == "api_key":
        env["FREDDY_API_KEY"] += "x"
    else:
        env["CONFORMANCE_ORG_ID"] = "org with a space"
    run = run_suite(env=env)
    assert run.exit_code == 3, run.stdout + run.stderr
    assert run.verdict == "error" and "refused the main credential" in run.results["verdict_reason"]
    assert server.request_count == 1 and run.results["checks"] == []
    assert "--judge-anyway" in run.stderr and "Traceback" not in run.stderr
    judged = run_suite("--judge-anyway", env=env)
    assert judged.exit_code == 1 and judged.verdict == "nonconformant"
