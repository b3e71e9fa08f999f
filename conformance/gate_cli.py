"""The release-gate commands of ``conformance``: ``baseline`` and ``diff``.

Both read files from outside the suite (:mod:`conformance.results_file`): an unreadable or
wrong-shaped file is one line on standard error and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from conformance.terminal import visible

EXIT_USAGE = 2

BASELINE_DESCRIPTION = """\
Write a baseline for 'conformance run --baseline FILE' from a run's results.json, to standard
output: one entry per failed MUST, its reason taken from the result, expiring in 30 days unless
--expires says otherwise. With it the run exits 1 only on a MUST failure the baseline does not
list, on an expired entry, or on an entry whose requirement no longer fails.

  conformance baseline reports/results.json > baseline.toml"""

DIFF_DESCRIPTION = """\
Compare two runs' results.json: which MUSTs regressed (fail now, did not before), which
requirements were fixed (failed before, pass now), and which changed their outcome otherwise."""

DIFF_EPILOG = """\
exit codes: 0 no regression, 1 a MUST regressed, 2 a file is unreadable or not a results.json."""


def add_commands(commands: Any) -> None:
    """Add ``baseline`` and ``diff`` to the ``conformance`` subcommands."""
    from conformance.diff import FORMATS

    baseline = commands.add_parser(
        "baseline", help="write a baseline of known MUST failures from a results.json (to standard output)",
        description=BASELINE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    baseline.add_argument("results", metavar="RESULTS_JSON", type=Path,
                          help="a results.json written by 'conformance run'")
    baseline.add_argument("--expires", metavar="DATE", type=expiry_date,
                          help="when the entries expire: YYYY-MM-DD, or a number of days from today (default 30)")
    baseline.set_defaults(handler=command_baseline)

    diff = commands.add_parser(
        "diff", help="compare two runs' results.json: what regressed, was fixed or changed",
        description=DIFF_DESCRIPTION, epilog=DIFF_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    diff.add_argument("old", metavar="OLD", type=Path, help="results.json of the earlier run")
    diff.add_argument("new", metavar="NEW", type=Path, help="results.json of the later run")
    diff.add_argument("--format", choices=FORMATS, default="text", help="text (default) or markdown")
    diff.set_defaults(handler=command_diff)


def expiry_date(text: str) -> date:
    """``--expires``: a date (YYYY-MM-DD) or a number of days from today; not in the past."""
    today = date.today()
    try:
        expires = today + timedelta(days=int(text)) if text.strip().isdigit() else date.fromisoformat(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{visible(text)!r} is not a date (YYYY-MM-DD) or a number of days") from None
    if expires < today:
        raise argparse.ArgumentTypeError(f"{expires.isoformat()} is in the past: the entries would fail at once")
    return expires


def command_baseline(args: argparse.Namespace) -> int:
    from conformance import baseline
    from conformance.results_file import InputFileError, read_results

    today = date.today()
    try:
        results = read_results(args.results)
        entries = baseline.entries_from_results(results, args.expires or baseline.default_expiry(today))
    except InputFileError as error:
        print(f"conformance baseline: {visible(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(baseline.render(entries, results, today))
    listed = ", ".join(entry.id for entry in entries) or "none (no MUST failed)"
    print(f"conformance baseline: known failures written: {listed}", file=sys.stderr)
    return 0


def command_diff(args: argparse.Namespace) -> int:
    from conformance import diff
    from conformance.results_file import InputFileError, read_results

    try:
        comparison = diff.compare(read_results(args.old), read_results(args.new))
    except InputFileError as error:
        print(f"conformance diff: {visible(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(diff.render(comparison, args.format))
    return comparison.exit_code
