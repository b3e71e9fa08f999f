"""The release gate: the run's exit code from its verdict, ``--strict`` and a ``--baseline``.

Without either the exit code is the verdict's (0 conformant or incomplete, 1 nonconformant,
3 error, 130 interrupted). ``--strict`` makes an incomplete run (a MUST not checked) exit 1.
A baseline (:mod:`conformance.baseline`) makes listed MUST failures known: the run then exits 1
only on a failure the baseline does not list, on an entry past its expiry, or on an entry whose
requirement no longer fails (the file only shrinks). The verdict in the reports never changes;
only the exit code does, and :meth:`GateDecision.lines` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from conformance import baseline
from conformance.baseline import KnownFailure
from conformance.config import Settings, setting_label
from conformance.results import EXIT_CODES, RequirementResult, RunResult
from conformance.terminal import visible

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_BASELINE_UNREADABLE = 2
EXIT_NOT_JUDGED = 3


@dataclass(frozen=True)
class BaselineFindings:
    """A baseline's entries sorted by what this run found."""

    path: Path
    known: tuple[KnownFailure, ...] = ()
    new_failures: tuple[RequirementResult, ...] = ()
    expired: tuple[KnownFailure, ...] = ()
    no_longer_failing: tuple[KnownFailure, ...] = ()
    unconfirmed: tuple[KnownFailure, ...] = ()

    @property
    def failing_the_gate(self) -> bool:
        return bool(self.new_failures or self.expired or self.no_longer_failing)


@dataclass(frozen=True)
class GateDecision:
    """The exit code of a run and the console lines that explain it."""

    exit_code: int
    verdict: str
    reference: bool
    strict: bool
    unchecked_musts: tuple[RequirementResult, ...]
    findings: BaselineFindings | None
    problem: str | None = None

    def lines(self) -> list[str]:
        """What the gate adds to the console summary; untrusted text is made visible."""
        lines = self._strict_lines() + self._baseline_lines()
        return lines + [self.headline()]

    def headline(self) -> str:
        status = "PASS" if self.exit_code == EXIT_PASS else "FAIL"
        target = " - target: the bundled reference deployment, not a deployment under test" if self.reference else ""
        return f"gate: {status} (exit {self.exit_code}): {self._why()}{target}"

    def _why(self) -> str:
        if self.problem:
            return self.problem
        if self.exit_code == EXIT_FAIL:
            return "; ".join(self._failing_reasons())
        parts = [f"verdict {self.verdict.upper()}"]
        if self.unchecked_musts and not self.strict:
            parts.append(f"{_count(len(self.unchecked_musts), 'MUST')} not checked, allowed without --strict")
        if self.findings is not None and self.findings.known:
            parts.append(f"{_count(len(self.findings.known), 'known MUST failure')} listed in the baseline")
        return "; ".join(parts)

    def _failing_reasons(self) -> list[str]:
        findings = self.findings
        reasons = []
        if findings is None:
            reasons += [f"verdict {self.verdict.upper()}"] if self.verdict == "nonconformant" else []
        else:
            if findings.new_failures:
                reasons.append(f"{_count(len(findings.new_failures), 'MUST failure')} not in the baseline")
            if findings.expired:
                reasons.append(f"{_count(len(findings.expired), 'baseline entry', 'baseline entries')} expired")
            if findings.no_longer_failing:
                reasons.append(f"{_count(len(findings.no_longer_failing), 'baseline entry', 'baseline entries')} "
                               "no longer failing")
        if self.strict and self.unchecked_musts:
            reasons.append(f"{_count(len(self.unchecked_musts), 'MUST')} not checked (--strict)")
        return reasons

    def _strict_lines(self) -> list[str]:
        """The MUSTs not checked, by id (the console summary above gives each one's reason)."""
        if not (self.strict and self.unchecked_musts):
            return []
        ids = ", ".join(r.id for r in self.unchecked_musts)
        count = _count(len(self.unchecked_musts), "MUST")
        return [f"strict: {count} not checked, which fails the gate under {setting_label('strict')}: {ids}"]

    def _baseline_lines(self) -> list[str]:
        findings = self.findings
        if findings is None:
            return []
        lines = [f"baseline {visible(str(findings.path))}:"]
        lines += [f"  KNOWN failure (listed; does not fail the gate): {e.describe()}" for e in findings.known]
        lines += [f"  NEW failure, not in the baseline: {r.id} [MUST] {visible(r.text)}" for r in findings.new_failures]
        lines += [f"  EXPIRED entry (fix the failure or renew the entry): {e.describe()}" for e in findings.expired]
        lines += [f"  NO LONGER FAILING (passed now; remove it from the baseline): {e.describe()}"
                  for e in findings.no_longer_failing]
        lines += [f"  NOT CONFIRMED (not judged in this run; kept): {e.describe()}" for e in findings.unconfirmed]
        if len(lines) == 1:
            lines.append("  no entries, and no MUST failed")
        return lines


def _count(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def decide(result: RunResult, settings: Settings, today: date | None = None) -> GateDecision:
    """The gate's decision on a finished run."""
    today = today or date.today()
    verdict, _ = result.verdict()
    requirements = result.requirements()
    musts = [r for r in requirements.values() if r.level == "MUST"]
    unchecked = tuple(r for r in musts if r.outcome == "not_checked")
    decision = GateDecision(EXIT_CODES[verdict], verdict, result.reference, settings.strict, unchecked, None)
    if verdict == "interrupted" or result.run_error:
        return decision
    findings, problem = None, None
    if settings.baseline is not None:
        try:
            findings = sort_baseline(settings.baseline, baseline.load(settings.baseline), requirements, today)
        except baseline.InputFileError as error:
            problem = f"{setting_label('baseline')} could not be read at the end of the run: {error}"
    code = _exit_code(musts, unchecked, findings, settings.strict, problem)
    return GateDecision(code, verdict, result.reference, settings.strict, unchecked, findings, problem)


def _exit_code(musts: list[RequirementResult], unchecked: tuple[RequirementResult, ...],
               findings: BaselineFindings | None, strict: bool, problem: str | None) -> int:
    if problem:
        return EXIT_BASELINE_UNREADABLE
    failed = [r for r in musts if r.outcome == "failed"]
    if findings.failing_the_gate if findings is not None else failed:
        return EXIT_FAIL
    if any(r.outcome == "error" for r in musts):
        return EXIT_NOT_JUDGED
    if strict and unchecked:
        return EXIT_FAIL
    return EXIT_PASS


def sort_baseline(path: Path, entries: tuple[KnownFailure, ...], requirements: dict[str, RequirementResult],
                  today: date) -> BaselineFindings:
    """Which entries this run confirms, which it contradicts, and which MUST failures are new."""
    listed = {entry.id for entry in entries}
    new = tuple(r for r in requirements.values() if r.level == "MUST" and r.outcome == "failed" and r.id not in listed)
    status = {entry.id: _entry_status(entry, requirements[entry.id].outcome, today) for entry in entries}

    def having(wanted: str) -> tuple[KnownFailure, ...]:
        return tuple(entry for entry in entries if status[entry.id] == wanted)

    return BaselineFindings(path, known=having("known"), new_failures=new, expired=having("expired"),
                            no_longer_failing=having("no_longer_failing"), unconfirmed=having("unconfirmed"))


def _entry_status(entry: KnownFailure, outcome: str, today: date) -> str:
    if outcome == "passed":
        return "no_longer_failing"
    if entry.expired(today):
        return "expired"
    return "known" if outcome == "failed" else "unconfirmed"
