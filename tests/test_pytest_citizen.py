"""A good pytest citizen: the suite runs on a QA machine that has pytest-base-url and
pytest-playwright installed, through ``conformance run``, ``pytest <checks folder>`` and
``pytest --pyargs conformance.checks``, takes the base URL the way those plugins do
(``--base-url``, the ``base_url`` ini, the ``base_url`` fixture), and leaves other pytest
projects on the same machine alone.

The plugins go into a virtualenv of the test's own (made once per session, from a copy of the
source tree), never into the environment running these tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import clean_env

ROOT = Path(__file__).resolve().parents[1]
QA_PLUGINS = ("pytest-base-url", "pytest-playwright")
SOURCE_PARTS = ("pyproject.toml", "README.md", "schemas", "conformance")
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def qa_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a virtualenv holding the suite (installed from a copy of this tree) and
    the plugins QA machines have."""
    workdir = tmp_path_factory.mktemp("qa-machine")
    source = copy_source(workdir / "source")
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source), *QA_PLUGINS], check=False,
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if install.returncode != 0:
        pytest.skip(f"pip could not install the suite with {', '.join(QA_PLUGINS)} into a fresh virtualenv: "
                    f"{install.stderr.strip().splitlines()[-1:]}")
    return python


def copy_source(target: Path) -> Path:
    """What pip needs to build the suite, copied so that building it writes nothing into the checkout."""
    target.mkdir(parents=True)
    for name in SOURCE_PARTS:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, target / name)
    return target


def run(python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], check=False, cwd=cwd, env=clean_env(env), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)


def without_base_url(server, tmp_path: Path) -> dict[str, str]:
    """Every setting of the reference ``server`` but its base URL, which the test passes its own way."""
    env = server.suite_env(tmp_path)
    env.pop("CONFORMANCE_BASE_URL")
    return env


def results(report_dir: Path) -> dict:
    return json.loads((report_dir / "results.json").read_text(encoding="utf-8"))


def assert_conformant_against(completed: subprocess.CompletedProcess, report_dir: Path, base_url: str) -> None:
    output = completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "conflicting option string" not in output
    assert completed.returncode == 0, output
    tested = results(report_dir)
    assert tested["verdict"] == "conformant", output
    assert tested["target"] == {**tested["target"], "base_url": base_url, "reference": False}


def installed_checks(python: Path, cwd: Path) -> str:
    code = "import conformance.checks, pathlib; print(pathlib.Path(conformance.checks.__file__).parent)"
    return run(python, "-c", code, cwd=cwd).stdout.strip()


def test_pyargs_takes_the_base_url_through_pytest_base_url(qa_python, reference, tmp_path):
    server = reference()
    report_dir = tmp_path / "reports"
    completed = run(qa_python, "-m", "pytest", "--pyargs", "conformance.checks", "--base-url", server.base_url,
                    "--report-dir", str(report_dir), cwd=tmp_path, env=without_base_url(server, tmp_path))
    assert_conformant_against(completed, report_dir, server.base_url)
    assert f"baseurl: {server.base_url}" in completed.stdout  # pytest-base-url's own header names it


def test_checks_folder_runs_under_plain_pytest_with_the_plugins(qa_python, reference, tmp_path):
    server = reference()
    report_dir = tmp_path / "reports"
    completed = run(qa_python, "-m", "pytest", installed_checks(qa_python, tmp_path), "--base-url", server.base_url,
                    "--report-dir", str(report_dir), cwd=tmp_path, env=without_base_url(server, tmp_path))
    assert_conformant_against(completed, report_dir, server.base_url)


def test_conformance_run_with_the_plugins_installed(qa_python, reference, tmp_path):
    server = reference()
    report_dir = tmp_path / "reports"
    completed = run(qa_python, "-m", "conformance", "run", "--base-url", server.base_url,
                    "--report-dir", str(report_dir), cwd=tmp_path, env=without_base_url(server, tmp_path))
    assert_conformant_against(completed, report_dir, server.base_url)


def test_environment_variable_still_names_the_target_under_pyargs(qa_python, reference, tmp_path):
    server = reference()
    report_dir = tmp_path / "reports"
    completed = run(qa_python, "-m", "pytest", "--pyargs", "conformance.checks", "--report-dir", str(report_dir),
                    cwd=tmp_path, env=server.suite_env(tmp_path))
    assert_conformant_against(completed, report_dir, server.base_url)


def test_base_url_ini_of_the_qa_project_is_read(qa_python, reference, tmp_path):
    server = reference()
    (tmp_path / "pytest.ini").write_text(f"[pytest]\nbase_url = {server.base_url}\n", encoding="utf-8")
    report_dir = tmp_path / "reports"
    completed = run(qa_python, "-m", "pytest", "--pyargs", "conformance.checks", "--report-dir", str(report_dir),
                    cwd=tmp_path, env=without_base_url(server, tmp_path))
    assert_conformant_against(completed, report_dir, server.base_url)


def test_playwrights_own_base_url_option_when_pytest_base_url_is_off(qa_python, reference, tmp_path):
    server = reference()
    report_dir = tmp_path / "reports"
    completed = run(qa_python, "-m", "pytest", "--pyargs", "conformance.checks", "-p", "no:base_url",
                    "--base-url", server.base_url, "--report-dir", str(report_dir), cwd=tmp_path,
                    env=without_base_url(server, tmp_path))
    assert_conformant_against(completed, report_dir, server.base_url)


def test_other_pytest_projects_on_the_machine_are_left_alone(qa_python, tmp_path):
    (tmp_path / "test_shop.py").write_text(
        "def test_shop(base_url):\n    assert base_url == 'https://shop.example'\n", encoding="utf-8")
    completed = run(qa_python, "-m", "pytest", "-q", "--base-url", "https://shop.example", cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "1 passed" in completed.stdout
    assert not (tmp_path / "reports").exists()  # no conformance run happened
    help_text = run(qa_python, "-m", "pytest", "--help", cwd=tmp_path).stdout
    assert "--requirement" not in help_text and "conformance" not in help_text
    refused = run(qa_python, "-m", "pytest", "--org", "org_x", cwd=tmp_path)
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR and "unrecognized arguments: --org" in refused.stderr
