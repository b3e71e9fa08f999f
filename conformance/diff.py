"""``conformance diff OLD NEW``: what changed between two runs' results.json.

A requirement *regressed* when it is a MUST that fails in NEW and did not fail in OLD; it was
*fixed* when it failed in OLD and passes in NEW; every other change of outcome (a SHOULD that
started failing, a requirement that could not be checked, one the contract added or dropped)
is a *change*. The command exits 1 when something regressed. Both files are untrusted input
(:mod:`conformance.results_file`); every value printed from them is made visible, and in
Markdown escaped as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance import summary
from conformance.results_file import RequirementOutcome, ResultsFile
from conformance.terminal import visible

EXIT_NO_REGRESSION = 0
EXIT_REGRESSION = 1
ABSENT = "absent"
FORMATS = ("text", "markdown")


@dataclass(frozen=True)
class Change:
    """One requirement whose outcome differs between the two runs."""

    id: str
    level: str
    was: str
    now: str
    reason: str  # NEW's reason (untrusted), or OLD's when NEW has none


@dataclass(frozen=True)
class Comparison:
    old: ResultsFile
    new: ResultsFile
    regressed: tuple[Change, ...]
    fixed: tuple[Change, ...]
    changed: tuple[Change, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.regressed else EXIT_NO_REGRESSION


def compare(old: ResultsFile, new: ResultsFile) -> Comparison:
    changes = [change for rid in sorted(set(old.requirements) | set(new.requirements))
               if (change := _change(rid, old.requirements.get(rid), new.requirements.get(rid))) is not None]
    regressed = tuple(c for c in changes if _regressed(c))
    fixed = tuple(c for c in changes if c.was == "failed" and c.now == "passed")
    changed = tuple(c for c in changes if c not in regressed and c not in fixed)
    return Comparison(old, new, regressed, fixed, changed)


def _change(rid: str, old: RequirementOutcome | None, new: RequirementOutcome | None) -> Change | None:
    was = old.outcome if old else ABSENT
    now = new.outcome if new else ABSENT
    if was == now:
        return None
    level = new.level if new else old.level if old else "?"
    reason = (new.reason if new else None) or (old.reason if old else None) or ""
    return Change(rid, level, was, now, reason)


def _regressed(change: Change) -> bool:
    return change.level == "MUST" and change.now == "failed"


# -- text ------------------------------------------------------------------------------------


def render_text(comparison: Comparison) -> str:
    lines = [
        f"old: {comparison.old.describe()}",
        f"new: {comparison.new.describe()}",
        f"verdict: {comparison.old.verdict.upper()} -> {comparison.new.verdict.upper()}",
    ]
    for title, changes in _sections(comparison):
        lines.append(f"{title} ({len(changes)}):" if changes else f"{title}: none")
        lines += [f"  {c.id} [{c.level}] {c.was} -> {c.now}" + (f": {visible(c.reason)}" if c.reason else "")
                  for c in changes]
    lines.append(_conclusion(comparison))
    return "\n".join(lines) + "\n"


def _sections(comparison: Comparison) -> list[tuple[str, tuple[Change, ...]]]:
    return [("regressed", comparison.regressed), ("fixed", comparison.fixed), ("changed", comparison.changed)]


def _conclusion(comparison: Comparison) -> str:
    if comparison.regressed:
        return f"REGRESSION: {len(comparison.regressed)} MUST(s) fail that did not fail before (exit 1)"
    return "no regression (exit 0)"


# -- Markdown --------------------------------------------------------------------------------


def render_markdown(comparison: Comparison) -> str:
    old, new = comparison.old, comparison.new
    parts = [
        f"## Conformance diff: {old.verdict.upper()} → {new.verdict.upper()}",
        f"Old: {summary.text(old.describe())}  \nNew: {summary.text(new.describe())}",
    ]
    for title, changes in _sections(comparison):
        if not changes:
            parts.append(f"### {title.capitalize()}: none")
            continue
        parts.append(f"### {title.capitalize()} ({len(changes)})\n\n" + summary.table(
            ("Requirement", "Level", "Was", "Now", "Reason"),
            [(c.id, c.level, c.was, c.now, summary.text(c.reason)) for c in changes]))
    parts.append(f"**{summary.text(_conclusion(comparison))}**")
    return "\n\n".join(parts) + "\n"


def render(comparison: Comparison, output_format: str) -> str:
    return render_markdown(comparison) if output_format == "markdown" else render_text(comparison)
