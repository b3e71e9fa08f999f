"""Known failures: a baseline file that lets a release gate pass while listed MUSTs still fail.

The file is TOML, one table per known failure, and every entry expires::

    [[known_failure]]
    id = "SHP-03"                       # a requirement id of the contract
    reason = "playback_url is filled before completion; fix planned in PLAT-123"
    expires = 2026-07-31                # after this day the entry fails the gate

``conformance run --baseline FILE`` treats a listed MUST failure as known for the exit code;
:mod:`conformance.gate` decides. ``conformance baseline results.json`` writes such a file from a
run's failed MUSTs (:func:`render`). The file comes from outside the suite: it is read bounded
(:data:`BASELINE_FILE_CAP`), every entry is checked, and anything wrong is an
:class:`InputFileError` with one line naming the file and the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from conformance import __version__, catalogue
from conformance.results_file import InputFileError, ResultsFile, read_bounded
from conformance.terminal import visible

__all__ = ["InputFileError", "KnownFailure", "default_expiry", "entries_from_results", "load", "render"]

BASELINE_FILE_CAP = 1024 * 1024
ENTRY_TABLE = "known_failure"
ENTRY_KEYS = ("id", "reason", "expires")
REASON_CAP = 300
DEFAULT_EXPIRY_DAYS = 30


@dataclass(frozen=True)
class KnownFailure:
    """One entry: a requirement expected to fail, why, and until when."""

    id: str
    reason: str
    expires: date

    def expired(self, today: date) -> bool:
        return self.expires < today

    def describe(self) -> str:
        """One console line (the reason is untrusted: made visible)."""
        return f"{self.id} (expires {self.expires.isoformat()}): {visible(self.reason)}"


def load(path: Path) -> tuple[KnownFailure, ...]:
    """The entries of the baseline file at ``path``; :class:`InputFileError` when unusable."""
    shown = visible(str(path))
    data = read_bounded(path, BASELINE_FILE_CAP)
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(f"{shown}: not UTF-8 text; expected a baseline (TOML)") from None
    except tomllib.TOMLDecodeError as error:
        raise InputFileError(f"{shown}: not valid TOML: {visible(str(error))}") from None
    unknown = sorted(set(document) - {ENTRY_TABLE})
    if unknown:
        raise InputFileError(f"{shown}: unknown key {visible(unknown[0])!r}; a baseline holds only "
                             f"[[{ENTRY_TABLE}]] tables")
    tables = document.get(ENTRY_TABLE, [])
    if not isinstance(tables, list):
        raise InputFileError(f"{shown}: {ENTRY_TABLE} must be an array of tables ([[{ENTRY_TABLE}]])")
    entries = tuple(_entry(f"{shown}: [[{ENTRY_TABLE}]] number {number}", table)
                    for number, table in enumerate(tables, start=1))
    _refuse_duplicates(shown, entries)
    return entries


def _entry(where: str, table: Any) -> KnownFailure:
    if not isinstance(table, dict):
        raise InputFileError(f"{where} is not a table")
    unknown = sorted(set(table) - set(ENTRY_KEYS))
    if unknown:
        raise InputFileError(f"{where} has unknown key {visible(unknown[0])!r}; an entry has {', '.join(ENTRY_KEYS)}")
    missing = [key for key in ENTRY_KEYS if key not in table]
    if missing:
        raise InputFileError(f"{where} has no {missing[0]!r}; an entry has {', '.join(ENTRY_KEYS)}")
    rid, reason = table["id"], table["reason"]
    if not isinstance(rid, str) or rid not in catalogue.REQUIREMENTS:
        raise InputFileError(f"{where}: id {visible(str(rid))[:40]!r} is not a requirement of contract "
                             f"{catalogue.CONTRACT_VERSION}")
    if not isinstance(reason, str) or not reason.strip():
        raise InputFileError(f"{where} ({rid}): reason must be text saying why the failure is accepted")
    return KnownFailure(rid, reason.strip()[:REASON_CAP], _expiry(f"{where} ({rid})", table["expires"]))


def _expiry(where: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):  # a TOML date, not a date-time
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InputFileError(f"{where}: expires must be a date, e.g. expires = 2026-07-31")


def _refuse_duplicates(shown: str, entries: Iterable[KnownFailure]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise InputFileError(f"{shown}: {entry.id} is listed twice")
        seen.add(entry.id)


# -- writing a baseline from a run ----------------------------------------------------------


def default_expiry(today: date) -> date:
    return today + timedelta(days=DEFAULT_EXPIRY_DAYS)


def entries_from_results(results: ResultsFile, expires: date) -> list[KnownFailure]:
    """One entry per failed MUST of ``results``, its reason taken from the result."""
    entries = []
    for requirement in results.failed_musts():
        if requirement.id not in catalogue.REQUIREMENTS:
            raise InputFileError(f"{visible(str(results.path))}: {requirement.id} is not a requirement of contract "
                                 f"{catalogue.CONTRACT_VERSION}; write the baseline with the suite version "
                                 "that wrote the results")
        reason = (requirement.reason or "").strip() or f"failed in the run started {results.started_at}"
        entries.append(KnownFailure(requirement.id, reason[:REASON_CAP], expires))
    return entries


def render(entries: Iterable[KnownFailure], source: ResultsFile, today: date) -> str:
    """The baseline as TOML text; every value from ``source`` made visible and quoted."""
    lines = [
        (f"# Known MUST failures for 'conformance run --baseline FILE' (conformance {__version__}, "
         f"contract {catalogue.CONTRACT_VERSION}), written {today.isoformat()}"),
        f"# from {source.describe()}.",
        "# The run exits 1 on a failure not listed here, on an entry past its 'expires' day, and on an",
        "# entry whose requirement no longer fails (remove it: the file only shrinks).",
    ]
    for entry in entries:
        lines += ["", f"[[{ENTRY_TABLE}]]", f"id = {toml_string(entry.id)}",
                  f"reason = {toml_string(entry.reason)}", f"expires = {entry.expires.isoformat()}"]
    return "\n".join(lines) + "\n"


def toml_string(text: str) -> str:
    """A TOML basic string of ``text`` made visible (so it holds no control character)."""
    return '"' + visible(text).replace("\\", "\\\\").replace('"', '\\"') + '"'
