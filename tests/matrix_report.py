"""A pytest plugin (loaded by the root conftest): the fault matrix's detection table.

Each run of ``test_fault_matrix.py::test_suite_against`` attaches one row to its report as a
user property; rows travel from pytest-xdist workers to the controller with the report, so
the table is printed at the end of a plain ``pytest`` run and of ``pytest -n 2`` alike.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

MATRIX_PROPERTY = "fault_matrix_row"

_rows: list[dict[str, Any]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == MATRIX_PROPERTY:
            _rows.append(json.loads(value))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _rows or hasattr(config, "workerinput"):
        return
    terminalreporter.section("fault matrix: the suite against faults and variations")
    for line in matrix_lines(_rows):
        terminalreporter.write_line(line)


def matrix_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The detection table, then ``detected X/Y faults, passed Z/W variations``."""
    faults = sorted((r for r in rows if r["kind"] == "fault"), key=lambda r: r["name"])
    variations = sorted((r for r in rows if r["kind"] == "variation"), key=lambda r: r["name"])
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'fault':{width}}  {'names':28}  {'suite failed: named; other':44}  {'verdict':13}  result"]
    for row in faults:
        named = [rid for rid in row["failed"] if rid in row["names"]]
        other = [rid for rid in row["failed"] if rid not in row["names"]]
        failed = ", ".join(named) + (f"; {', '.join(other)}" if other else "")
        lines.append(f"{row['name']:{width}}  {', '.join(row['names']):28}  {failed or '-':44}  "
                     f"{row['verdict']:13}  {'detected' if row['ok'] else 'MISSED'}")
    lines += ["", f"{'variation':{width}}  {'suite failed':74}  {'verdict':13}  result"]
    for row in variations:
        lines.append(f"{row['name']:{width}}  {', '.join(row['failed']) or '-':74}  "
                     f"{row['verdict']:13}  {'passed' if row['ok'] else 'FAILED'}")
    detected = sum(row["ok"] for row in faults)
    passed = sum(row["ok"] for row in variations)
    lines.append(f"detected {detected}/{len(faults)} faults, passed {passed}/{len(variations)} variations")
    return lines
