"""The suite proves itself: run against every fault it must catch and every variation it must pass.

Each case starts the reference deployment with one behaviour and runs ``conformance run`` in a
subprocess against it, with every credential and the expected dataset. A fault must make the
suite fail every requirement it names (its ``breaks``); a variation must leave the verdict
conformant with nothing failed. The detection table is printed at the end of the test run
(tests/matrix_report.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest

from conformance import catalogue
from conformance.reference import ReferenceServer
from conformance.reference.faults import FAULTS, VARIATIONS
from conformance.reference.variations import ManyJobs, OccasionalRateLimit
from conftest import SuiteRun, clean_env
from tests.matrix_report import MATRIX_PROPERTY

ORACLE = "DAT-01"
MATRIX = [pytest.param(name, id=f"fault-{name}") for name in sorted(FAULTS)] + [
    pytest.param(name, id=f"variation-{name}") for name in sorted(VARIATIONS)]


def level(requirement_id: str) -> str:
    return catalogue.get(requirement_id).level


def failed_in_catalogue_order(run: SuiteRun) -> list[str]:
    failed = run.outcomes("failed")
    return [rid for rid in catalogue.REQUIREMENTS if rid in failed]


def fault_problems(name: str, run: SuiteRun) -> list[str]:
    """Why the suite's judgement of fault ``name`` is wrong; empty when it is right."""
    breaks = FAULTS[name].breaks
    failed = set(failed_in_catalogue_order(run))
    problems = [f"{rid} ({level(rid)}) is named but was {run.outcome(rid)}" for rid in breaks
                if rid not in failed]
    if any(level(rid) == "MUST" for rid in breaks):
        if run.verdict != "nonconformant" or run.exit_code != 1:
            problems.append(f"a MUST is broken but the verdict is {run.verdict} (exit {run.exit_code})")
    else:
        # Only SHOULDs are named: no MUST may fail but the oracle (which sees any changed field).
        musts = {rid for rid in failed if level(rid) == "MUST"}
        if musts - {ORACLE}:
            problems.append(f"only SHOULDs are broken but MUSTs failed: {sorted(musts - {ORACLE})}")
        expected = "nonconformant" if musts else "conformant"
        if run.verdict != expected:
            problems.append(f"the verdict is {run.verdict}, the rules give {expected}")
    return problems


def variation_problems(run: SuiteRun) -> list[str]:
    problems = [f"{rid} failed: {run.results['requirements'][rid]['reason']}"
                for rid in failed_in_catalogue_order(run)]
    if run.verdict != "conformant" or run.exit_code != 0:
        reason = run.results["verdict_reason"]
        problems.append(f"the verdict is {run.verdict} ({reason}), exit {run.exit_code}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("name", MATRIX)
def test_suite_against(name: str, reference, run_suite, record_property) -> None:
    behaviour = FAULTS.get(name) or VARIATIONS[name]
    # A variation may need its own deployment (many-jobs: 3000 jobs) and settings for the run.
    jobs = getattr(behaviour, "jobs", None)
    server = reference(behaviour=name, **({"jobs": jobs} if jobs else {}))
    run = run_suite(*getattr(behaviour, "suite_args", ()), server=server)
    assert (run.report_dir / "results.json").is_file(), run.stdout[-2000:] + run.stderr[-2000:]
    problems = fault_problems(name, run) if behaviour.kind == "fault" else variation_problems(run)
    record_property(MATRIX_PROPERTY, json.dumps({
        "kind": behaviour.kind, "name": name, "names": list(behaviour.breaks),
        "failed": failed_in_catalogue_order(run), "verdict": run.verdict, "ok": not problems,
    }))
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.slow
def test_many_jobs_walked_as_a_prefix_plus_the_last_page_are_checked_whole(reference, run_suite) -> None:
    """Past the default --max-listing (2000) the suite walks a prefix and finds the end by
    searching offset: every requirement is checked, and the checks that judge the whole listing
    say they judged the prefix plus the last page."""
    run = run_suite(server=reference(jobs=ManyJobs.jobs))
    assert run.verdict == "conformant" and run.exit_code == 0, run.results["verdict_reason"]
    assert run.outcomes("passed") == set(run.results["requirements"])
    assert run.results["listing"]["complete"] is False and run.results["listing"]["size"] == ManyJobs.jobs
    dataset = next(check for check in run.results["checks"] if check["id"].startswith("test_dataset.py::"))
    assert "a prefix of 2000 jobs plus the last page" in dataset["message"], dataset


def test_variations_really_differ_from_the_reference() -> None:
    """A variation that silently behaved like the reference would prove nothing."""
    with ReferenceServer(behaviour="gzip-bodies", jobs=5) as gzipped, \
            ReferenceServer(behaviour="connection-close", jobs=5) as closing, \
            ReferenceServer(behaviour="charset-content-type", jobs=5) as charset, \
            ReferenceServer(behaviour="occasional-429", jobs=5) as limited:
        assert _get(gzipped).headers["content-encoding"] == "gzip"
        assert _get(closing).headers["connection"] == "close"
        assert _get(charset).headers["content-type"] == "application/json; charset=utf-8"
        statuses = [_get(limited).status_code for _ in range(OccasionalRateLimit.EVERY)]
        assert statuses.count(429) == 1 and statuses[-1] == 429
        assert _get(limited).status_code == 200  # the retry after it goes through


def _get(server: ReferenceServer) -> httpx.Response:
    url = f"{server.base_url}/v1/music/{server.fixture.organization_id}/generations"
    return httpx.get(url, params={"limit": 1}, headers={"X-API-Key": server.fixture.api_key}, timeout=10)


# The registry


def test_there_are_enough_faults_and_variations() -> None:
    assert len(FAULTS) >= 45 and len(VARIATIONS) >= 10


def test_every_fault_names_catalogue_requirements() -> None:
    for name, fault in FAULTS.items():
        assert fault.kind == "fault" and fault.breaks, name
        for rid in fault.breaks:
            catalogue.get(rid)
        # The oracle sees every changed field; a fault naming it must break nothing else.
        assert ORACLE not in fault.breaks or fault.breaks == (ORACLE,), name


def test_every_requirement_group_has_a_fault() -> None:
    groups = {requirement.group for requirement in catalogue.REQUIREMENTS.values()}
    covered = {catalogue.get(rid).group for fault in FAULTS.values() for rid in fault.breaks}
    assert groups - covered == set()


def test_variations_break_nothing() -> None:
    for name, variation in VARIATIONS.items():
        assert variation.kind == "variation" and variation.breaks == () and variation.description, name


def test_faults_command_lists_every_behaviour() -> None:
    result = subprocess.run([sys.executable, "-m", "conformance", "faults"], env=clean_env(),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, behaviour in {**FAULTS, **VARIATIONS}.items():
        line = next((line for line in lines if line.split()[:1] == [name]), None)
        assert line is not None, name
        assert behaviour.description in line and all(rid in line for rid in behaviour.breaks), line


def test_serve_with_a_fault_serves_it() -> None:
    command = [sys.executable, "-m", "conformance", "serve", "--fault", "no-auth", "--port", "0",
               "--jobs", "20"]
    env = {**clean_env(), "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL) as process:
        try:
            assert process.stdout is not None
            banner = _read_banner(process.stdout)
            assert "(no-auth)" in banner["title"]
            url = f"{banner['base URL']}/v1/music/{banner['organization id']}/generations"
            response = httpx.get(url, timeout=10)  # no credentials: the fault serves it anyway
            assert response.status_code == 200 and len(response.json()["jobs"]) == 20
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_with_an_unknown_fault_suggests_names() -> None:
    result = subprocess.run([sys.executable, "-m", "conformance", "serve", "--fault", "no-aut"],
                            env=clean_env(), capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert "no-auth" in result.stderr and "Traceback" not in result.stderr


def _read_banner(stdout: Any) -> dict[str, str]:
    banner: dict[str, str] = {"title": stdout.readline()}
    for line in stdout:
        if line.startswith("Press Ctrl-C"):
            return banner
        label, _, value = line.partition(":")
        banner[label.strip()] = value.strip()
    raise AssertionError(f"the banner ended early: {banner}")
