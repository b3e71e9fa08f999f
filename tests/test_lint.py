"""ruff and mypy, configured in pyproject.toml, stay clean: CI runs them here, through the
README's one test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = run("ruff", "check", "conformance", "tests", "benchmarks", "conftest.py")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_mypy_finds_nothing_in_the_package():
    result = run("mypy", "conformance")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
