"""Aimed runs: which checks a run selects (``--requirement``, ``--last-failed``), and the
not-selected rest, which every artifact reports ``not_checked`` with the reason "not selected".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from conformance import catalogue

NOT_SELECTED = "not selected"
# The outcomes of a previous run that --last-failed runs again.
RERUN_OUTCOMES = ("failed", "error")


def requirement_pattern(text: str) -> str:
    """A ``--requirement`` value: an id or a glob (``AUTH-*``) naming at least one requirement."""
    pattern = text.strip().upper()
    if not pattern:
        raise ValueError("an empty requirement id")
    if not matching_requirements([pattern]):
        raise ValueError(f"{text.strip()!r} names no requirement of the contract "
                         f"(ids look like {next(iter(catalogue.REQUIREMENTS))}; globs like AUTH-* work)")
    return pattern


def matching_requirements(patterns: Iterable[str]) -> set[str]:
    """The contract's requirement ids that any of ``patterns`` names."""
    patterns = list(patterns)
    return {rid for rid in catalogue.REQUIREMENTS if any(fnmatchcase(rid, pattern) for pattern in patterns)}


@dataclass(frozen=True)
class PreviousFailures:
    """What ``--last-failed`` found in the report folder: the ids of the checks to run again
    (None: run every check), and a sentence saying what it does."""

    check_ids: frozenset[str] | None
    note: str


def previous_failures(report_dir: Path) -> PreviousFailures:
    """The checks that failed or ended in error in the previous ``results.json`` of ``report_dir``.

    Without a readable previous result, or when nothing failed in it, every check runs (as
    pytest's ``--lf`` does), and the note says so.
    """
    from conformance.reports import RESULTS_FILE

    path = report_dir / RESULTS_FILE
    try:
        checks = json.loads(path.read_text(encoding="utf-8"))["checks"]
        failed = frozenset(check["id"] for check in checks if check["outcome"] in RERUN_OUTCOMES)
    except FileNotFoundError:
        return PreviousFailures(None, f"last-failed: no previous results in {path}: running every check")
    except (OSError, ValueError, KeyError, TypeError) as error:
        return PreviousFailures(None, f"last-failed: the previous results {path} are unreadable ({error}): "
                                      "running every check")
    if not failed:
        return PreviousFailures(None, f"last-failed: no check failed in the previous run ({path}): "
                                      "running every check")
    return PreviousFailures(failed, f"last-failed: running the {len(failed)} checks that failed or ended in "
                                    f"error in the previous run ({path})")


def is_selected(check_id: str, requirement_ids: Sequence[str], wanted: set[str] | None,
                rerun: frozenset[str] | None) -> bool:
    """Whether a check runs: it cites a wanted requirement (when some are named) and failed in
    the previous run (with ``--last-failed`` and a previous failure)."""
    if wanted is not None and not wanted.intersection(requirement_ids):
        return False
    return rerun is None or check_id in rerun


def nothing_selected(collected: int, reasons: Sequence[str], keyword: str = "") -> str:
    """The sentence of a run whose selection left no check to run (a usage error, exit 2)."""
    if not collected:
        return "no check was collected: nothing to run (check the paths given to pytest)"
    why = " and ".join(reasons) if reasons else "the selection"
    return f"no check selected: {why} left none of the {collected} checks to run{_keyword_hint(keyword)}"


def _keyword_hint(keyword: str) -> str:
    """-k matches check names: a requirement id given to it is almost always meant for --requirement."""
    pattern = keyword.strip().upper()
    if not pattern or not matching_requirements([pattern]):
        return ""
    return f"; -k matches check names, not requirement ids: use --requirement {pattern}"
