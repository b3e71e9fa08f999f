"""The catalogue equals CONTRACT.md, every id has a check, every check cites known ids."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.cli import CHECKS_DIR

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "spec" / "CONTRACT.md"
ROW = re.compile(r"^\| ([A-Z]{3,4}-\d\d) \| (MUST|SHOULD|MAY) \| (.+) \|\s*$")


def contract_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in CONTRACT.read_text(encoding="utf-8").splitlines():
        if match := ROW.match(line):
            rows[match.group(1)] = (match.group(2), match.group(3).strip())
    return rows


def cited_ids() -> dict[str, set[str]]:
    """check name -> requirement ids, read from the markers of every check function."""
    cited: dict[str, set[str]] = {}
    for path in sorted(CHECKS_DIR.glob("test_*.py")):
        module = importlib.import_module(f"conformance.checks.{path.stem}")
        for name, function in vars(module).items():
            if name.startswith("test_") and callable(function):
                marks = [m for m in getattr(function, "pytestmark", []) if m.name == "requirement"]
                cited[f"{path.name}::{name}"] = {rid for mark in marks for rid in mark.args}
    return cited


@pytest.mark.skipif(not CONTRACT.is_file(), reason="shared/spec/CONTRACT.md is not beside this checkout")
def test_catalogue_equals_the_contract():
    expected = contract_rows()
    actual = {r.id: (r.level, r.text) for r in catalogue.REQUIREMENTS.values()}
    assert len(expected) >= 37
    assert actual == expected


def test_every_check_cites_a_known_requirement():
    cited = cited_ids()
    assert len(cited) >= 40
    uncited = [name for name, ids in cited.items() if not ids]
    unknown = {name: ids - set(catalogue.REQUIREMENTS) for name, ids in cited.items()
               if ids - set(catalogue.REQUIREMENTS)}
    assert not uncited, f"checks without @pytest.mark.requirement: {uncited}"
    assert not unknown, f"checks citing unknown ids: {unknown}"


def test_every_requirement_has_a_check():
    covered = set().union(*cited_ids().values())
    assert sorted(set(catalogue.REQUIREMENTS) - covered) == []


def test_unknown_id_is_rejected_by_name():
    with pytest.raises(KeyError, match="NOPE-01"):
        catalogue.get("NOPE-01")
