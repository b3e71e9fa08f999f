"""summary.md: the run in a page of Markdown, for CI summaries (GitHub's step summary, a merge
request comment, a chat message).

It holds the target, the verdict, the gate's decision, the requirements that failed or were
not checked, and a curl command for each failed check. Every run writes it to the report folder
through :func:`conformance.output.write_text` (so it is redacted like every other artifact),
and appends it to ``$GITHUB_STEP_SUMMARY`` when that is set. Text from outside the suite (a
deployment's answers in reasons, a baseline's reasons) is made visible and escaped, so it can
neither break the Markdown nor add links or markup.
"""

from __future__ import annotations

import html
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from conformance import __version__, catalogue, output, reports
from conformance.gate import GateDecision
from conformance.redaction import Redactor
from conformance.results import CheckRecord, RequirementResult, RunResult
from conformance.terminal import visible

SUMMARY_FILE = "summary.md"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
MAX_REPRODUCTIONS = 20
CELL_CAP = 300
ARTIFACTS = (reports.HTML_FILE, reports.JUNIT_FILE, reports.RESULTS_FILE, SUMMARY_FILE)


@dataclass(frozen=True)
class SummaryWritten:
    """Where the summary went, and why it did not reach the step summary when it did not."""

    path: Path
    step_summary: Path | None = None
    problem: str | None = None


def write(result: RunResult, decision: GateDecision | None, report_dir: Path, redactor: Redactor,
          environ: Mapping[str, str] | None = None) -> SummaryWritten:
    """Write summary.md, and append it to ``$GITHUB_STEP_SUMMARY`` when that is set."""
    environ = os.environ if environ is None else environ
    text = render(result, decision)
    path = output.write_text(report_dir / SUMMARY_FILE, text, redactor)
    step_summary = environ.get(STEP_SUMMARY_ENV, "")
    if not step_summary:
        return SummaryWritten(path)
    try:
        output.append_text(Path(step_summary), text + "\n", redactor)
    except OSError as error:
        return SummaryWritten(path, problem=f"${STEP_SUMMARY_ENV} ({visible(step_summary)}) could not be "
                                            f"appended to: {visible(error.strerror or str(error))}")
    return SummaryWritten(path, Path(step_summary))


def print_artifacts(report_dir: Path, written: SummaryWritten | None, extra: Iterable[Path] = (),
                    file: TextIO | None = None) -> None:
    """Print :func:`artifact_lines` (``conformance run`` ends with them)."""
    for line in artifact_lines(report_dir, written, extra):
        print(line, file=file or sys.stdout)


def artifact_lines(report_dir: Path, written: SummaryWritten | None, extra: Iterable[Path] = ()) -> list[str]:
    """The console's last lines: every file the run wrote, and where the summary also went."""
    paths = [report_dir / name for name in ARTIFACTS] + list(extra)
    lines = ["artifacts:"] + [f"  {visible(str(path))}" for path in paths if path.is_file()]
    if written is not None and written.step_summary is not None:
        lines.append(f"  {SUMMARY_FILE} appended to ${STEP_SUMMARY_ENV} ({visible(str(written.step_summary))})")
    if written is not None and written.problem:
        lines.append(f"  warning: {written.problem}")
    return lines


# -- the Markdown ---------------------------------------------------------------------------


def render(result: RunResult, decision: GateDecision | None) -> str:
    verdict, reason = result.verdict()
    requirements = result.requirements()
    sections = [
        _header(result, verdict, reason),
        _gate(decision),
        _failed(requirements.values()),
        _not_checked(requirements.values()),
        _budget(result, requirements.values()),
        _reproductions(result.checks),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _header(result: RunResult, verdict: str, reason: str | None) -> str:
    counts = result.counts()
    target = (f"{code(result.base_url)}: **the bundled reference deployment**, not a deployment under test"
              if result.reference else code(result.base_url))
    return "\n".join([
        f"## API conformance: {verdict.upper()}",
        "",
        f"**Verdict: {verdict.upper()}**" + (f": {text(reason)}" if reason else "") + "  ",
        f"Target: {target}  ",
        (f"Organization: {code(result.organization_id)} · conformance {__version__} · contract "
         f"{catalogue.CONTRACT_VERSION} · {result.requests} requests  "),
        (f"Requirements: {counts['passed']} passed, {counts['failed']} failed ({counts['warnings']} of them "
         f"SHOULD/MAY warnings), {counts['not_checked']} not checked, {counts['error']} error"),
    ])


def _gate(decision: GateDecision | None) -> str:
    if decision is None:
        return ""
    return f"### Gate: exit {decision.exit_code}\n\n" + fenced("\n".join(decision.lines()), "text")


def _failed(requirements: Iterable[RequirementResult]) -> str:
    rows = [r for r in requirements if r.outcome in ("failed", "error")]
    if not rows:
        return ""
    rows.sort(key=lambda r: (r.level != "MUST", r.outcome != "failed", r.id))
    return f"### Failed or not judged ({len(rows)})\n\n" + table(
        ("Requirement", "Level", "Outcome", "Requirement text", "Reason"),
        [(r.id, r.level, _outcome(r), text(r.text), text(r.reason or "")) for r in rows])


def _not_checked(requirements: Iterable[RequirementResult]) -> str:
    rows = [r for r in requirements if r.outcome == "not_checked"]
    if not rows:
        return ""
    rows.sort(key=lambda r: (r.level != "MUST", r.id))
    return f"### Not checked ({len(rows)})\n\n" + table(
        ("Requirement", "Level", "Reason"), [(r.id, r.level, text(r.reason or "")) for r in rows])


def _budget(result: RunResult, requirements: Iterable[RequirementResult]) -> str:
    line = result.budget_line()
    if line is None:
        return ""
    return (f"### How the request budget was spent\n\n{text(line[0].upper() + line[1:])}. Requests per "
            "requirement: a request several checks asked for counts for the first to ask, a check citing "
            "several requirements counts for each.\n\n" + table(
                ("Requirement", "Requests", "Checks", "Not reached (budget)"),
                [(r.id, str(r.requests), str(len(r.checks)), str(r.cut_by_budget)) for r in requirements]))


def _reproductions(checks: Sequence[CheckRecord]) -> str:
    failing = [check for check in checks if check.outcome in ("failed", "error") and check.curl]
    if not failing:
        return ""
    failing.sort(key=lambda check: reports.check_level(check) != "MUST")
    parts = [f"### Reproduce ({len(failing)} checks)"]
    for check in failing[:MAX_REPRODUCTIONS]:
        parts.append(f"{code(check.id)} ({', '.join(check.requirements)}): {text(check.message or check.outcome)}")
        parts.append(fenced(check.curl or "", "sh"))
    if len(failing) > MAX_REPRODUCTIONS:
        parts.append(f"{len(failing) - MAX_REPRODUCTIONS} more in {reports.HTML_FILE} and {reports.RESULTS_FILE}.")
    return "\n\n".join(parts)


def _outcome(requirement: RequirementResult) -> str:
    label = requirement.outcome.replace("_", " ")
    return f"{label} (warning)" if requirement.outcome == "failed" and requirement.level != "MUST" else label


# -- Markdown that untrusted text cannot break ----------------------------------------------

# Characters that start Markdown structure inline (emphasis, links, images, code, tables,
# strike-through, HTML): each is shown as itself, escaped.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~!#])")


def text(value: str, cap: int = CELL_CAP) -> str:
    """``value`` as plain Markdown text on one line: visible, capped, HTML and Markdown escaped."""
    shown = visible(value)
    shown = shown if len(shown) <= cap else shown[:cap] + "..."
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(shown, quote=False))


def code(value: str) -> str:
    """``value`` as an inline code span on one line (not for table cells: a pipe would split them)."""
    shown = visible(value)[:CELL_CAP] or " "
    ticks = "`" * (_longest_backtick_run(shown) + 1)
    padding = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{ticks}{padding}{shown}{padding}{ticks}"


def fenced(value: str, language: str) -> str:
    """``value`` in a fenced code block no line of it can close."""
    shown = visible(value, keep_newlines=True)
    fence = "`" * max(3, _longest_backtick_run(shown) + 1)
    return f"{fence}{language}\n{shown}\n{fence}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _longest_backtick_run(value: str) -> int:
    return max((len(run) for run in re.findall(r"`+", value)), default=0)
