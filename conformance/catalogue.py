"""The requirement catalogue: every id of the contract with its level, group and text.

The one place the suite knows the contract, read from the copy of ``CONTRACT.md`` that ships
with it (``conformance/contract/CONTRACT.md``), so the ids, levels and texts cannot drift from
the document. Checks cite these ids with ``@pytest.mark.requirement(...)``; the project's tests
keep the shipped copy equal to ``shared/spec/CONTRACT.md`` and every id tied to a check.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal, cast

Level = Literal["MUST", "SHOULD", "MAY"]

CONTRACT_PACKAGE = "conformance.contract"
CONTRACT_FILE = "CONTRACT.md"

_VERSION = re.compile(r"^Contract version \*\*(?P<version>[0-9][0-9A-Za-z.]*)\*\*", re.MULTILINE)
_GROUP = re.compile(r"^## (?P<group>.+?)\s*$")
_ROW = re.compile(r"^\| (?P<id>[A-Z]{3,4}-\d\d) \| (?P<level>MUST|SHOULD|MAY) \| (?P<text>.+) \|\s*$")


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    group: str
    text: str


class ContractError(Exception):
    """The shipped contract cannot be read as a catalogue (no version line, no requirement)."""


def contract_file() -> Traversable:
    """The shipped copy of the contract (a file in the installed package)."""
    return resources.files(CONTRACT_PACKAGE).joinpath(CONTRACT_FILE)


@cache
def contract_bytes() -> bytes:
    """The shipped contract, byte for byte (what :func:`contract_digest` hashes)."""
    return contract_file().read_bytes()


def contract_text() -> str:
    """The shipped contract as text (Markdown)."""
    return contract_bytes().decode("utf-8")


def contract_digest() -> str:
    """SHA-256 of the shipped contract's bytes, so a results file says which contract judged it."""
    return hashlib.sha256(contract_bytes()).hexdigest()


def parse_version(text: str) -> str:
    """The version from the header line ``Contract version **1.1** (...)``."""
    match = _VERSION.search(text)
    if match is None:
        raise ContractError(f"{CONTRACT_FILE} has no line 'Contract version **X.Y**'")
    return match.group("version")


def parse_requirements(text: str) -> dict[str, Requirement]:
    """Every row ``| ID | LEVEL | text |`` of the contract's tables, under its ``## group`` heading."""
    requirements: dict[str, Requirement] = {}
    group = ""
    for line in text.splitlines():
        if heading := _GROUP.match(line):
            group = heading.group("group")
        elif row := _ROW.match(line):
            rid = row.group("id")
            if rid in requirements:
                raise ContractError(f"{CONTRACT_FILE} lists {rid} twice")
            requirements[rid] = Requirement(rid, cast(Level, row.group("level")), group, row.group("text").strip())
    if not requirements:
        raise ContractError(f"{CONTRACT_FILE} has no requirement rows '| ID | LEVEL | text |'")
    return requirements


CONTRACT_VERSION: str = parse_version(contract_text())
REQUIREMENTS: dict[str, Requirement] = parse_requirements(contract_text())


def get(requirement_id: str) -> Requirement:
    """The requirement with that id; ``KeyError`` names an unknown one."""
    try:
        return REQUIREMENTS[requirement_id]
    except KeyError:
        raise KeyError(f"unknown requirement id {requirement_id!r}") from None
