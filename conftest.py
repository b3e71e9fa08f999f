"""Fixtures for the project's own tests: a real reference deployment, and the real CLI run
against it in a subprocess, as a user would run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from conformance.reference import ReferenceServer

# The project's own property tests judge logic, not speed: on a busy CI machine a timing health
# check or the 200 ms deadline would fail them for the machine's load, not for a bug.
settings.register_profile("project-tests", deadline=None,
                          suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much, HealthCheck.large_base_example))
settings.load_profile("project-tests")

RUN_TIMEOUT_S = 300
# The fault matrix's detection table in the terminal summary (tests/test_fault_matrix.py).
pytest_plugins = ["tests.matrix_report"]


@dataclass
class SuiteRun:
    """What one ``conformance run`` left behind."""

    exit_code: int
    stdout: str
    stderr: str
    report_dir: Path

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.report_dir / "results.json").read_text(encoding="utf-8"))

    @property
    def verdict(self) -> str:
        return self.results["verdict"]

    def outcome(self, requirement_id: str) -> str:
        return self.results["requirements"][requirement_id]["outcome"]

    def outcomes(self, outcome: str) -> set[str]:
        return {rid for rid, r in self.results["requirements"].items() if r["outcome"] == outcome}


def reference_env(server: ReferenceServer, dataset_dir: Path) -> dict[str, str]:
    """Environment variables that point the suite at ``server`` with every credential."""
    return server.suite_env(dataset_dir)


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment without any CONFORMANCE_*/FREDDY_* setting or proxy variable (the
    tests' servers are on loopback), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONFORMANCE_", "FREDDY_")) and k.lower() not in PROXY_VARIABLES}
    env.update(extra or {})
    return env


# Any test that asks for it ends at this limit, whatever it waits for (an alarm: pytest-timeout's
# --timeout option collides with the suite's).
TEST_LIMIT_S = 240


@pytest.fixture
def hard_limit() -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"the test ran past its hard limit of {TEST_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def reference() -> Iterator[Callable[..., ReferenceServer]]:
    """Start reference deployments (``reference(behaviour="no-auth", jobs=50)``); all stop after."""
    servers: list[ReferenceServer] = []

    def start(**options: Any) -> ReferenceServer:
        server = ReferenceServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def run_suite(tmp_path: Path) -> Callable[..., SuiteRun]:
    """Run ``python -m conformance run`` in a subprocess.

    With ``server`` the suite is pointed at it through the environment (every credential and
    the dataset); without it the CLI starts its own reference deployment.
    """
    counter = iter(range(1_000_000))

    def run(*args: str, server: ReferenceServer | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> SuiteRun:
        report_dir = tmp_path / f"reports-{next(counter)}"
        settings = reference_env(server, tmp_path) if server is not None else {}
        settings.update(env or {})
        completed = subprocess.run(
            [sys.executable, "-m", "conformance", "run", "--report-dir", str(report_dir), *args],
            env=clean_env(settings), cwd=cwd or tmp_path, capture_output=True, text=True,
            timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )
        return SuiteRun(completed.returncode, completed.stdout, completed.stderr, report_dir)

    return run
