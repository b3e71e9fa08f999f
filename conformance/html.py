"""The parts of report.html the suite adds to pytest-html's page, from the result model."""

from __future__ import annotations

import html
import json
from typing import Any

from conformance import __version__, catalogue
from conformance.client import Exchange
from conformance.results import CheckRecord, RunResult
from conformance.terminal import visible

MATRIX_ORDER = {"failed": 0, "error": 1, "not_checked": 2, "passed": 3}
STYLE = """
<style>
.cf-verdict{font-size:1.4em;font-weight:bold;padding:.4em .8em;display:inline-block;border-radius:4px}
.cf-conformant{background:#d4edda}.cf-nonconformant{background:#f8d7da}
.cf-incomplete{background:#fff3cd}.cf-error{background:#f8d7da}.cf-interrupted{background:#f8d7da}
.cf-matrix{border-collapse:collapse;margin:1em 0}.cf-matrix td,.cf-matrix th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
.cf-failed{color:#a00;font-weight:bold}.cf-error-outcome{color:#a00}.cf-not_checked{color:#8a6d00}.cf-passed{color:#070}
.cf-exchange{border-left:3px solid #ccc;margin:.5em 0;padding-left:.5em}
.cf-exchange pre{white-space:pre-wrap;max-height:30em;overflow:auto;background:#f7f7f7;padding:4px}
</style>
"""


def escape(text: str) -> str:
    """Text for HTML: markup escaped, and control characters (which HTML forbids) shown."""
    return html.escape(visible(text, keep_newlines=True))


def metadata(result: RunResult) -> dict[str, str]:
    """The 'Environment' table: only facts that are safe to publish. pytest-html renders
    these values as markup, so each is escaped here."""
    facts = {
        "Target": result.target_description(),
        "Organization": result.organization_id,
        "Suite": f"conformance {__version__}",
        "Contract": f"{catalogue.CONTRACT_VERSION} (sha256 {catalogue.contract_digest()[:12]})",
    }
    return {name: escape(value) for name, value in facts.items()}


def summary(result: RunResult) -> list[str]:
    """The header (verdict and run facts) and the requirement matrix."""
    verdict, reason = result.verdict()
    facts = result.to_dict()
    rows = [
        ("Target", f"{result.base_url}" + (" (bundled reference deployment)" if result.reference else "")),
        ("Organization", result.organization_id),
        ("Suite / contract", f"{__version__} / {catalogue.CONTRACT_VERSION} (sha256 {catalogue.contract_digest()[:12]})"),
        ("Hypothesis", ", ".join(f"{k} {v}" for k, v in result.hypothesis.items()) or "-"),
        ("Started", facts["started_at"]),
        ("Duration", f"{facts['duration_s']} s"),
        ("Requests", str(result.requests)),
        ("Listing", _listing_text(result.listing)),
    ]
    header = [
        STYLE,
        f'<p><span class="cf-verdict cf-{verdict}">Verdict: {verdict.upper()}</span> '
        f"{escape(reason or '')}</p>",
        '<table class="cf-matrix" id="cf-facts">'
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
        + "</table>",
    ]
    return header + [requirement_matrix(result)]


def requirement_matrix(result: RunResult) -> str:
    outcomes = {check.id: check.outcome for check in result.checks}
    requirements = sorted(result.requirements().values(),
                          key=lambda r: (MATRIX_ORDER[r.outcome], r.id))
    body = "".join(
        f'<tr data-requirement="{r.id}" data-outcome="{r.outcome}"><td>{r.id}</td><td>{r.level}</td>'
        f'<td class="{_outcome_class(r.outcome)}">{_outcome_label(r.outcome, r.level)}</td>'
        f"<td>{escape(r.text)}</td><td>{escape(r.reason or '')}</td>"
        f"<td>{'<br>'.join(_checks_text(r.checks, outcomes))}</td></tr>"
        for r in requirements
    )
    return (
        "<h2>Requirements</h2>"
        '<table class="cf-matrix" id="cf-requirements"><tr><th>Id</th><th>Level</th><th>Outcome</th>'
        f"<th>Requirement</th><th>Reason</th><th>Checks</th></tr>{body}</table>"
    )


def check_extras(record: CheckRecord) -> list[dict[str, Any]]:
    """pytest-html extras of one check: its requirements, message, exchanges and a curl."""
    from pytest_html import extras

    parts = [f"<p><b>Requirements:</b> {escape(', '.join(record.requirements))}</p>"]
    if record.message:
        parts.append(f"<p><b>{escape(_outcome_label(record.outcome, ''))}:</b> {escape(record.message)}</p>")
    if record.outcome in ("failed", "error") and record.curl:
        parts.append(f"<p><b>Reproduce:</b></p><pre class=\"cf-curl\">{escape(record.curl)}</pre>")
    shown, body_cap = (FAILED_EXCHANGES_SHOWN, None) if record.outcome in ("failed", "error") else (
        PASSED_EXCHANGES_SHOWN, PASSED_BODY_CAP)
    hidden = len(record.exchanges) - shown
    if hidden > 0:
        parts.append(f"<p>{hidden} earlier exchanges of this check are counted in results.json, not shown</p>")
    parts += [exchange_html(exchange, body_cap) for exchange in record.exchanges[-shown:]]
    return [extras.html("".join(parts))]


FAILED_EXCHANGES_SHOWN = 5
PASSED_EXCHANGES_SHOWN = 2
PASSED_BODY_CAP = 1500


def exchange_html(exchange: Exchange, body_cap: int | None = None) -> str:
    request = "\n".join(f"{name}: {value}" for name, value in exchange.request_headers)
    response = "\n".join(f"{name}: {value}" for name, value in exchange.response_headers)
    status = exchange.error or f"{exchange.status}"
    note = " (rate limited; retried, not judged)" if exchange.retried else ""
    body = pretty_body(exchange.body)
    truncated = " (truncated)" if exchange.body_truncated else ""
    if body_cap is not None and len(body) > body_cap:
        body, truncated = body[:body_cap], f" ... ({len(body) - body_cap} more characters)"
    return (
        f'<div class="cf-exchange"><p><b>{escape(exchange.method)} {escape(exchange.url)}</b> '
        f"&rarr; {escape(status)}{note} in {exchange.elapsed_s * 1000:.0f} ms</p>"
        f"<pre>{escape(request)}</pre><pre>{escape(response)}</pre>"
        f"<pre>{escape(body)}{truncated}</pre></div>"
    )


def pretty_body(body: str) -> str:
    """The body indented when it is JSON; as received when it is not, or nests too deeply to
    re-serialise (a hostile body must not stop the report from being written)."""
    try:
        return json.dumps(json.loads(body), indent=2)
    except (ValueError, RecursionError):
        return body


def _checks_text(check_ids: tuple[str, ...], outcomes: dict[str, str]) -> list[str]:
    """One line per check function; parametrized cases folded, those that did not pass named."""
    by_function: dict[str, list[str]] = {}
    for check_id in check_ids:
        by_function.setdefault(check_id.split("[", 1)[0], []).append(check_id)
    lines = []
    for function, cases in by_function.items():
        if len(cases) == 1:
            lines.append(escape(cases[0]))
            continue
        lines.append(f"{escape(function)} ({len(cases)} cases)")
        lines += [f"&nbsp;&nbsp;{escape(outcomes.get(c, '?'))}: {escape(c.split('[', 1)[1].rstrip(']'))}"
                  for c in cases if outcomes.get(c) != "passed"]
    return lines


def _outcome_label(outcome: str, level: str) -> str:
    label = outcome.replace("_", " ")
    return f"{label} ({level} - warning)" if outcome == "failed" and level in ("SHOULD", "MAY") else label


def _outcome_class(outcome: str) -> str:
    return "cf-error-outcome" if outcome == "error" else f"cf-{outcome}"


def _listing_text(listing: dict[str, Any]) -> str:
    if "jobs" not in listing:
        return "not walked"
    scope = "whole listing" if listing.get("complete") else "a prefix (capped by --max-listing)"
    changed = "; changed during the run" if listing.get("changed_during_run") else ""
    return f"{listing['jobs']} jobs, {scope}{changed}"


__all__ = ["check_extras", "escape", "exchange_html", "metadata", "summary"]
