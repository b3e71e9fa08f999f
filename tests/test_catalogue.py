"""The shipped contract equals CONTRACT.md, the catalogue is read from it, every id has a
check, every check cites known ids."""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.cli import CHECKS_DIR

# shared/ sits beside the clone: /work/shared/spec here, ../shared/spec in CI.
CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "spec" / "CONTRACT.md"
ROW = re.compile(r"^\| ([A-Z]{3,4}-\d\d) \| (MUST|SHOULD|MAY) \| (.+) \|\s*$")
VERSION = re.compile(r"^Contract version \*\*([0-9.]+)\*\*", re.MULTILINE)
beside_the_clone = pytest.mark.skipif(
    not CONTRACT.is_file(), reason=f"no shared/spec/CONTRACT.md beside this checkout ({CONTRACT} is missing)")


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


@beside_the_clone
def test_shipped_contract_is_the_shared_one_byte_for_byte():
    assert catalogue.contract_bytes() == CONTRACT.read_bytes(), (
        f"conformance/contract/CONTRACT.md differs from {CONTRACT}: copy it over")


@beside_the_clone
def test_catalogue_equals_the_contract():
    expected = contract_rows()
    actual = {r.id: (r.level, r.text) for r in catalogue.REQUIREMENTS.values()}
    assert len(expected) == 39
    assert actual == expected
    assert catalogue.CONTRACT_VERSION == VERSION.search(CONTRACT.read_text(encoding="utf-8")).group(1)


def test_catalogue_is_read_from_the_shipped_contract():
    text = catalogue.contract_text()
    assert catalogue.CONTRACT_VERSION == "1.1"
    assert len(catalogue.REQUIREMENTS) == 39
    assert catalogue.REQUIREMENTS == catalogue.parse_requirements(text)
    assert catalogue.contract_digest() == hashlib.sha256(catalogue.contract_file().read_bytes()).hexdigest()
    for requirement in catalogue.REQUIREMENTS.values():
        assert f"| {requirement.id} | {requirement.level} | {requirement.text} |" in text


def test_requirements_carry_their_group_heading():
    assert catalogue.get("AUTH-09").group == "Authentication and authorization"
    assert catalogue.get("ROB-01").group == "Robustness"
    assert catalogue.get("DAT-01").group == "Oracle (optional)"
    assert catalogue.get("AUTH-08").level == "MUST"
    assert "every credential" not in catalogue.get("ROB-01").text  # the row, not the header's summary
    assert "with any of the run's credentials" in catalogue.get("ROB-01").text


def test_a_contract_without_version_or_rows_is_refused_by_name():
    with pytest.raises(catalogue.ContractError, match="Contract version"):
        catalogue.parse_version("# The contract under test\n")
    with pytest.raises(catalogue.ContractError, match="no requirement rows"):
        catalogue.parse_requirements("## Terms\n| id | level | requirement |\n")


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
