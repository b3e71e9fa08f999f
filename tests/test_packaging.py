"""The wheel carries the schemas and the checks: the suite runs from it outside a checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


DISTRIBUTION = "music_generation_jobs_conformance"  # the name on the package index, normalised


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The wheel and the sdist, built as a release would be (``python -m build``)."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    return dist


@pytest.fixture(scope="module")
def installed_wheel(built, tmp_path_factory) -> Path:
    wheel = next(built.glob(f"{DISTRIBUTION}-*.whl"))
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def test_release_files_pass_twine_check_and_carry_the_version(built):
    files = sorted(built.iterdir())
    assert {path.suffix for path in files} == {".whl", ".gz"}, files
    from conformance import __version__
    assert all(f"-{__version__}" in path.name for path in files), files
    check = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_sdist_carries_the_contract_and_the_schemas(built):
    import tarfile
    with tarfile.open(next(built.glob("*.tar.gz"))) as sdist:
        names = sdist.getnames()
    assert any(name.endswith("conformance/contract/CONTRACT.md") for name in names)
    assert any(name.endswith("schemas/results.schema.json") for name in names)


def in_wheel_env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFORMANCE_", "FREDDY_"))}
    env["PYTHONPATH"] = str(site)
    return env


def test_wheel_ships_every_schema_and_the_checks_config(installed_wheel):
    names = {p.name for p in (installed_wheel / "conformance" / "_schemas").iterdir()}
    assert {"job.schema.json", "page.schema.json", "error.schema.json", "results.schema.json",
            "openapi.yaml"} <= names
    assert (installed_wheel / "conformance" / "checks" / "pytest.ini").is_file()


def test_schemas_load_from_the_wheel_not_the_checkout(installed_wheel, tmp_path):
    code = ("import conformance.schemas as s; print(s.schema_dir()); "
            "print(s.statuses()); s.validator('page.schema.json')")
    out = subprocess.run([sys.executable, "-c", code], env=in_wheel_env(installed_wheel), cwd=tmp_path,
                         capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
    assert out[0].startswith(str(installed_wheel))
    assert "succeeded" in out[1]


def test_suite_runs_from_the_wheel(installed_wheel, tmp_path):
    result = subprocess.run([sys.executable, "-m", "conformance", "run", "--report-dir", str(tmp_path / "r")],
                            env=in_wheel_env(installed_wheel), cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["verdict"] == "conformant"
