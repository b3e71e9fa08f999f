"""Reading a results.json someone hands the suite (``conformance diff``, ``conformance baseline``).

Such a file is untrusted input: it may be huge, not JSON, nested without end, or shaped
differently from what the suite writes. :func:`read_results` reads at most
:data:`RESULTS_FILE_CAP` bytes, checks the few fields the gate commands use, and raises
:class:`InputFileError` with a one-line message otherwise. Values it returns are still
untrusted text: print them through :func:`conformance.terminal.visible`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.terminal import visible

MiB = 1024 * 1024
RESULTS_FILE_CAP = 32 * MiB
MAX_REQUIREMENTS = 1000
TEXT_CAP = 500
# Ids as a contract writes them (AUTH-04, SHP-03), with room for later contracts.
REQUIREMENT_ID = re.compile(r"[A-Z][A-Z0-9]{0,15}-[A-Z0-9]{1,16}")
LEVELS = ("MUST", "SHOULD", "MAY")
OUTCOMES = ("passed", "failed", "not_checked", "error")
VERDICTS = ("conformant", "nonconformant", "incomplete", "error", "interrupted")


class InputFileError(Exception):
    """A file given to the suite cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class RequirementOutcome:
    """One requirement's entry of a results.json."""

    id: str
    level: str
    outcome: str
    reason: str | None
    text: str


@dataclass(frozen=True)
class ResultsFile:
    """The parts of a results.json the gate commands use."""

    path: Path
    verdict: str
    base_url: str
    reference: bool
    started_at: str
    requirements: dict[str, RequirementOutcome]

    def failed_musts(self) -> list[RequirementOutcome]:
        return [r for r in self.requirements.values() if r.level == "MUST" and r.outcome == "failed"]

    def describe(self) -> str:
        """One line: which run this is (every value made visible)."""
        target = "the bundled reference deployment" if self.reference else self.base_url or "an unnamed target"
        return visible(f"{self.path} ({self.verdict}, {target}, started {self.started_at or 'at an unknown time'})")


def read_bounded(path: Path, cap: int) -> bytes:
    """At most ``cap`` bytes of ``path``; :class:`InputFileError` when unreadable or larger."""
    shown = visible(str(path))
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except FileNotFoundError:
        raise InputFileError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{shown}: is a folder, not a file") from None
    except OSError as error:
        raise InputFileError(f"{shown}: cannot read it: {visible(error.strerror or str(error))}") from None
    if len(data) > cap:
        raise InputFileError(f"{shown}: larger than {cap // MiB} MiB; not a file the suite wrote")
    return data


def read_results(path: Path) -> ResultsFile:
    """The results.json at ``path``, shape-checked; :class:`InputFileError` says what is wrong."""
    shown = visible(str(path))
    data = read_bounded(path, RESULTS_FILE_CAP)
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(f"{shown}: not UTF-8 text; expected a results.json") from None
    except (ValueError, RecursionError):
        raise InputFileError(f"{shown}: not valid JSON; expected a results.json") from None
    if not isinstance(document, dict):
        raise InputFileError(f"{shown}: not a results.json (expected a JSON object)")
    return _results(path, document)


def _results(path: Path, document: dict[str, Any]) -> ResultsFile:
    shown = visible(str(path))
    verdict = document.get("verdict")
    if verdict not in VERDICTS:
        raise InputFileError(f"{shown}: not a results.json ('verdict' is not one of {', '.join(VERDICTS)})")
    target = document.get("target")
    target = target if isinstance(target, dict) else {}
    requirements = document.get("requirements")
    if not isinstance(requirements, dict) or not requirements:
        raise InputFileError(f"{shown}: not a results.json ('requirements' is not an object of requirements)")
    if len(requirements) > MAX_REQUIREMENTS:
        raise InputFileError(f"{shown}: lists more than {MAX_REQUIREMENTS} requirements; not a results.json")
    return ResultsFile(
        path=path, verdict=verdict,
        base_url=_text(target.get("base_url")), reference=target.get("reference") is True,
        started_at=_text(document.get("started_at")),
        requirements={rid: _requirement(shown, rid, entry) for rid, entry in requirements.items()},
    )


def _requirement(shown: str, rid: str, entry: Any) -> RequirementOutcome:
    if not REQUIREMENT_ID.fullmatch(rid):
        raise InputFileError(f"{shown}: {visible(rid[:40])!r} is not a requirement id")
    if not isinstance(entry, dict):
        raise InputFileError(f"{shown}: requirement {rid} is not an object")
    level, outcome, reason = entry.get("level"), entry.get("outcome"), entry.get("reason")
    if level not in LEVELS:
        raise InputFileError(f"{shown}: requirement {rid} has no level {'/'.join(LEVELS)}")
    if outcome not in OUTCOMES:
        raise InputFileError(f"{shown}: requirement {rid} has no outcome {', '.join(OUTCOMES)}")
    if reason is not None and not isinstance(reason, str):
        raise InputFileError(f"{shown}: requirement {rid} has a reason that is not text")
    return RequirementOutcome(rid, level, outcome, None if reason is None else _text(reason), _text(entry.get("text")))


def _text(value: Any) -> str:
    """A string field, capped; anything else is empty. Still untrusted: show it with visible()."""
    if not isinstance(value, str):
        return ""
    return value if len(value) <= TEXT_CAP else value[:TEXT_CAP] + "..."
