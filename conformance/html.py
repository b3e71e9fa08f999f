"""The parts of report.html the suite adds to pytest-html's page, from the result model.

The page reads top down: the verdict and the run's facts, the requirement matrix (failures
first; each check it names links to the check), then every check that failed or erred with
the exchanges it judged, the answer that broke the rule last and in full, then what was not
checked, then the exchanges several failed checks judged (walk pages), each shown once, and
last pytest-html's table of every check. That section is written when the run has ended, so
it knows which exchanges are shared; a check's row in pytest-html's table (written while the
run goes on) links to it. Passing checks keep a short, capped excerpt in their row.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping
from typing import Any

from conformance import __version__, catalogue
from conformance.client import Exchange
from conformance.results import CheckRecord, RunResult
from conformance.terminal import visible

MATRIX_ORDER = {"failed": 0, "error": 1, "not_checked": 2, "passed": 3}
# Text colours meet WCAG AA (4.5:1) on their backgrounds: pytest-html's own greys (#999 on
# white, 2.8:1), orange (2.0:1), red (4.0:1) and hover hints (#bbb) are overridden here; this
# style comes after pytest-html's in the page, so the same selectors win.
STYLE = """
<style>
body,#results-table,.collapse button,.filters button{color:#1f1f1f}
a{color:#0645ad}
span.passed,.passed .col-result{color:#1a7f37}
span.skipped,span.xfailed,span.rerun,.skipped .col-result,.xfailed .col-result,.rerun .col-result{color:#8a5300}
span.error,span.failed,span.xpassed,.error .col-result,.failed .col-result,.xpassed .col-result{color:#b00020}
.collapsible td:not(.col-links):hover::after,#environment-header h2:hover::after,
#environment-header.collapsed h2:hover::after{color:#595959}
.filters button:hover,.collapse button:hover{color:#000}
.summary__reload__button{background-color:#2e7d32}
.cf-verdict{font-size:1.4em;font-weight:bold;padding:.4em .8em;display:inline-block;border-radius:4px;color:#000}
.cf-conformant{background:#d4edda}.cf-nonconformant{background:#f8d7da}
.cf-incomplete{background:#fff3cd}.cf-error{background:#f8d7da}.cf-interrupted{background:#f8d7da}
.cf-nav{margin:.3em 0 .8em}
.cf-matrix{border-collapse:collapse;margin:.5em 0 1em}
.cf-matrix td,.cf-matrix th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
#cf-facts th{text-align:left}#cf-requirements td:first-child{white-space:nowrap}
.cf-failed{color:#a00;font-weight:bold}.cf-error-outcome{color:#a00}.cf-not_checked{color:#7a4d00}.cf-passed{color:#1a7f37}
.cf-check{border:1px solid #ccc;border-left:4px solid #a00;margin:.8em 0;padding:.2em .8em .5em}
.cf-check h3{font-size:14px;margin:.4em 0}
.cf-note{color:#444}
.cf-exchanges{list-style:none;padding-left:0;margin:.4em 0}
.cf-exchanges>li{margin:.3em 0}
.cf-line{font-family:monospace;overflow-wrap:anywhere}
.cf-line a{font-family:Helvetica,Arial,sans-serif;white-space:nowrap}
.cf-exchange{border-left:3px solid #767676;margin:.5em 0;padding-left:.5em}
.cf-culprit{border-left-color:#a00}
.cf-exchange pre{white-space:pre-wrap;overflow-wrap:anywhere;max-height:30em;overflow:auto;
background:#f7f7f7;color:#1f1f1f;padding:4px;margin:.3em 0}
.cf-shared>summary{cursor:pointer;padding:2px 0}
</style>
"""
# Opens the folded shared exchange a link points to (browsers that do not reveal a fragment
# inside a closed <details> themselves).
SCRIPT = """
<script>
(function(){function reveal(){var t;
try{t=document.getElementById(decodeURIComponent(location.hash.slice(1)))}catch(x){return}
for(var e=t;e;e=e.parentElement){if(e.tagName==="DETAILS"){e.open=true}}if(t){t.scrollIntoView()}}
window.addEventListener("hashchange",reveal);window.addEventListener("load",reveal)})();
</script>
"""

# A failed check's last exchanges in full, the culprit last (a shared one: once, under shared
# exchanges), after one line for each of the exchanges before them, up to FAILED_EXCHANGES_LISTED.
FAILED_EXCHANGES_SHOWN = 3
FAILED_EXCHANGES_LISTED = 20
PASSED_EXCHANGES_SHOWN = 2
PASSED_BODY_CAP = 1500
COMPACT_WIDTH = 400  # a JSON value whose compact form is this short is shown on one line (a job of a page)


def escape(text: str) -> str:
    """Text for HTML: markup escaped, and control characters (which HTML forbids) shown."""
    return html.escape(visible(text, keep_newlines=True))


def escape_text(text: str) -> str:
    """:func:`escape` for the content of an element, never an attribute: quotes, which only
    an attribute needs escaped, are kept as they are (a JSON body is full of them, and each
    would take six characters, twelve in pytest-html's table)."""
    return html.escape(visible(text, keep_newlines=True), quote=False)


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


# -- anchors ------------------------------------------------------------------------------

def check_anchor(check_id: str) -> str:
    """The element id of a check's section (failed, error, not checked) in the summary."""
    return f"cf-check-{_slug(check_id)}"


def row_anchor(check_id: str) -> str:
    """The element id of a check's row in pytest-html's results table."""
    return f"cf-row-{_slug(check_id)}"


def requirement_anchor(requirement_id: str) -> str:
    return f"cf-req-{_slug(requirement_id)}"


def _slug(text: str) -> str:
    """A readable id, unique by its hash suffix whatever characters ``text`` holds."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80]
    return f"{readable}-{hashlib.sha1(text.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"


def check_link(record_id: str, outcome: str) -> str:
    """Where the matrix sends a reader for a check: its section when it did not pass, its row
    in the results table when it passed."""
    return check_anchor(record_id) if outcome != "passed" else row_anchor(record_id)


def requirement_links(requirement_ids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f'<a href="#{escape(requirement_anchor(rid))}">{escape(rid)}</a>' for rid in requirement_ids)


# -- the summary: verdict, facts, matrix, failed checks, shared exchanges --------------------

def summary(result: RunResult) -> list[str]:
    """What comes before pytest-html's table: the header (verdict and run facts), the
    requirement matrix, and the evidence of every check that did not pass."""
    verdict, reason = result.verdict()
    facts = result.to_dict()
    rows = [
        ("Target", f"{result.base_url}" + (" (bundled reference deployment)" if result.reference else "")),
        ("Organization", result.organization_id),
        ("Suite / contract",
         f"{__version__} / {catalogue.CONTRACT_VERSION} (sha256 {catalogue.contract_digest()[:12]})"),
        ("Hypothesis", ", ".join(f"{k} {v}" for k, v in result.hypothesis.items()) or "-"),
        ("Started", facts["started_at"]),
        ("Duration", f"{facts['duration_s']} s"),
        ("Requests", str(result.requests)),
        ("Listing", _listing_text(result.listing)),
    ]
    requirements = result.requirements()
    failing = _failing_checks(result)
    not_checked = [check for check in result.checks if check.outcome == "not_checked"]
    shared = _shared_exchanges(failing)
    nav = ['<a href="#cf-requirements">requirements</a>']
    if failing:
        nav.append(f'<a href="#cf-failures">checks that failed ({len(failing)})</a>')
    if not_checked:
        nav.append(f'<a href="#cf-not-checked">not checked ({len(not_checked)})</a>')
    if shared:
        nav.append(f'<a href="#cf-shared">shared exchanges ({len(shared)})</a>')
    nav.append('<a href="#results-table">every check</a>')
    header = [
        STYLE,
        SCRIPT,
        f'<p><span class="cf-verdict cf-{verdict}" id="cf-verdict">Verdict: {verdict.upper()}</span> '
        f"{_link_requirement_ids(escape(reason or ''), requirements)}</p>",
        f'<p class="cf-nav">Go to: {" &middot; ".join(nav)}</p>',
        '<table class="cf-matrix" id="cf-facts">'
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
        + "</table>",
    ]
    return header + [requirement_matrix(result), failures_section(failing, shared),
                     not_checked_section(not_checked), shared_section(shared, failing)]


def requirement_matrix(result: RunResult) -> str:
    outcomes = {check.id: check.outcome for check in result.checks}
    requirements = sorted(result.requirements().values(),
                          key=lambda r: (MATRIX_ORDER[r.outcome], r.id))
    body = "".join(
        f'<tr id="{escape(requirement_anchor(r.id))}" data-requirement="{r.id}" data-outcome="{r.outcome}">'
        f"<td>{r.id}</td><td>{r.level}</td>"
        f'<td class="{_outcome_class(r.outcome)}">{_outcome_label(r.outcome, r.level)}</td>'
        f"<td>{escape(r.text)}</td><td>{escape(r.reason or '')}</td>"
        f"<td>{'<br>'.join(_checks_text(r.checks, outcomes))}</td><td>{r.requests}</td></tr>"
        for r in requirements
    )
    budget = result.budget_line()
    return (
        "<h2>Requirements</h2>"
        + (f'<p id="cf-budget">{escape(budget[0].upper() + budget[1:])}.</p>' if budget else "")
        + '<table class="cf-matrix" id="cf-requirements"><tr><th>Id</th><th>Level</th><th>Outcome</th>'
        '<th>Requirement</th><th>Reason</th><th>Checks</th>'
        '<th title="requests sent for its checks: a request several checks asked for counts for the first '
        f'to ask, a check citing several requirements counts for each">Requests</th></tr>{body}</table>'
    )


def failures_section(failing: list[CheckRecord], shared: dict[tuple[Any, ...], int]) -> str:
    if not failing:
        return ""
    return (
        f'<h2 id="cf-failures">Checks that failed ({len(failing)})</h2>'
        '<p class="cf-note">Each with the curl that reproduces it and the exchanges it judged, the one '
        "whose answer broke the rule last and in full. An exchange several of these checks judged "
        '(a page of the listing walk) is listed in one line and shown once, under '
        '<a href="#cf-shared">shared exchanges</a>.</p>'
        + "".join(failure_html(record, shared) for record in failing)
    )


def failure_html(record: CheckRecord, shared: dict[tuple[Any, ...], int]) -> str:
    """One failed (or erred) check: what it cites, its message, its curl and its exchanges."""
    parts = [f'<section class="cf-check" id="{escape(check_anchor(record.id))}">'
             f'<h3>{escape(record.id)} <span class="{_outcome_class(record.outcome)}">'
             f"{escape(_outcome_label(record.outcome, ''))}</span></h3>",
             f"<p><b>Requirements:</b> {requirement_links(record.requirements)} &middot; "
             f'<a href="#{escape(row_anchor(record.id))}">row in the table of every check</a></p>']
    if record.message:
        parts.append(f"<p><b>{escape(_outcome_label(record.outcome, ''))}:</b> {escape(record.message)}</p>")
    if record.curl:
        parts.append(f'<p><b>Reproduce:</b></p><pre class="cf-curl">{escape(record.curl)}</pre>')
    culprit = _culprit(record)
    exchanges = record.exchanges
    listed = exchanges[-FAILED_EXCHANGES_LISTED:]
    full_from = len(listed) - FAILED_EXCHANGES_SHOWN
    if exchanges:
        earlier = len(exchanges) - len(listed)
        counted = f"; the {earlier} before these are not listed" if earlier else ""
        parts.append(f"<p><b>Exchanges</b> ({len(exchanges)}{counted}):</p>")
    items = []
    for index, exchange in enumerate(listed):
        is_culprit = exchange is culprit
        number = shared.get(_same(exchange))
        if number is not None:
            items.append(f'<li class="cf-line">{exchange_line(exchange, is_culprit)} &middot; '
                         f'<a href="#cf-ex-{number}">shared exchange {number}</a></li>')
        elif index >= full_from or is_culprit:
            items.append(f"<li>{exchange_html(exchange, culprit=is_culprit)}</li>")
        else:
            items.append(f'<li class="cf-line">{exchange_line(exchange, is_culprit)}</li>')
    if items:
        parts.append(f'<ul class="cf-exchanges">{"".join(items)}</ul>')
    parts.append("</section>")
    return "".join(parts)


def not_checked_section(records: list[CheckRecord]) -> str:
    if not records:
        return ""
    items = "".join(
        f'<li id="{escape(check_anchor(record.id))}"><b>{escape(record.id)}</b> '
        f"({requirement_links(record.requirements)}): {escape(record.message or 'not checked')}</li>"
        for record in records
    )
    return f'<h2 id="cf-not-checked">Not checked ({len(records)})</h2><ul>{items}</ul>'


def shared_section(shared: dict[tuple[Any, ...], int], failing: list[CheckRecord]) -> str:
    """Each exchange several failed checks list, once, folded: a link to it unfolds it."""
    if not shared:
        return ""
    first: dict[tuple[Any, ...], Exchange] = {}
    users: dict[tuple[Any, ...], set[str]] = {}
    for record in failing:
        for exchange in record.exchanges[-FAILED_EXCHANGES_LISTED:]:
            key = _same(exchange)
            if key in shared:
                first.setdefault(key, exchange)
                users.setdefault(key, set()).add(record.id)
    entries = "".join(
        f'<details class="cf-shared"><summary class="cf-line">{number}. {exchange_line(first[key])} &middot; '
        f"listed by {len(users[key])} of the checks above</summary>"
        f'<div id="cf-ex-{number}">{exchange_html(first[key])}</div></details>'
        for key, number in shared.items()
    )
    return (f'<h2 id="cf-shared">Shared exchanges ({len(shared)})</h2>'
            '<p class="cf-note">Exchanges (a request and its answer) that several failed checks list, each '
            "shown once; an exchange another check sent again and got the same answer links here too. "
            "Click one to unfold it.</p>" + entries)


def _failing_checks(result: RunResult) -> list[CheckRecord]:
    """The checks that failed or erred, in matrix order: those of the first failed requirement first."""
    matrix = sorted(result.requirements().values(), key=lambda r: (MATRIX_ORDER[r.outcome], r.id))
    position = {r.id: index for index, r in enumerate(matrix)}
    failing = [check for check in result.checks if check.outcome in ("failed", "error")]
    return sorted(failing, key=lambda c: min((position.get(rid, len(position)) for rid in c.requirements),
                                             default=len(position)))


def _shared_exchanges(failing: list[CheckRecord]) -> dict[tuple[Any, ...], int]:
    """The exchanges two or more failed checks list (by request and answer: each failed check
    walks the listing again before it reports, so equal pages come as exchanges of their own)
    -> their numbers under shared exchanges, in order of first appearance."""
    checks: dict[tuple[Any, ...], int] = {}
    for record in failing:
        for key in {_same(exchange) for exchange in record.exchanges[-FAILED_EXCHANGES_LISTED:]}:
            checks[key] = checks.get(key, 0) + 1
    numbers: dict[tuple[Any, ...], int] = {}
    for record in failing:
        for exchange in record.exchanges[-FAILED_EXCHANGES_LISTED:]:
            key = _same(exchange)
            if checks[key] > 1 and key not in numbers:
                numbers[key] = len(numbers) + 1
    return numbers


def _same(exchange: Exchange) -> tuple[Any, ...]:
    """What makes two exchanges show the same thing: the request and the answer's status and
    body (not headers such as Date, nor timings)."""
    return (exchange.method, exchange.url, exchange.status, exchange.error, exchange.retried,
            exchange.body_truncated, exchange.body)


def _culprit(record: CheckRecord) -> Exchange | None:
    """The exchange whose answer broke the rule: the one ``record.curl`` repeats."""
    if record.culprit is not None:
        return record.culprit
    judged = [exchange for exchange in record.exchanges if not exchange.retried]
    return judged[-1] if judged else None


# -- a check's row in pytest-html's table --------------------------------------------------

def check_extras(record: CheckRecord) -> list[dict[str, Any]]:
    """pytest-html extras of one check: its requirements and message; a failed check's
    evidence is in its section of the summary (linked), a passed or not checked check keeps
    its last exchanges, bodies capped."""
    from pytest_html import extras

    parts = [f"<p><b>Requirements:</b> {requirement_links(record.requirements)}</p>"]
    if record.message:
        parts.append(f"<p><b>{escape(_outcome_label(record.outcome, ''))}:</b> {escape(record.message)}</p>")
    if record.outcome in ("failed", "error"):
        parts.append(f'<p><b>Evidence:</b> <a href="#{escape(check_anchor(record.id))}">the exchanges this '
                     "check judged, and the curl that reproduces its failure</a></p>")
        return [extras.html("".join(parts))]
    hidden = len(record.exchanges) - PASSED_EXCHANGES_SHOWN
    if hidden > 0:
        parts.append(f"<p>{hidden} earlier exchanges of this check are counted in results.json, not shown</p>")
    parts += [exchange_html(exchange, PASSED_BODY_CAP) for exchange in record.exchanges[-PASSED_EXCHANGES_SHOWN:]]
    return [extras.html("".join(parts))]


def table_row_cell(record: CheckRecord | None, when: str, outcome: str) -> str:
    """The Requirements cell of a check's row in the results table; the check's call row
    (or the setup row that ended it) carries the id the matrix links to."""
    if record is None:
        return "<td></td>"
    anchored = when == "call" or (when == "setup" and outcome != "passed")
    attribute = f' id="{escape(row_anchor(record.id))}"' if anchored else ""
    return f"<td{attribute}>{requirement_links(record.requirements)}</td>"


# -- exchanges ------------------------------------------------------------------------------

def exchange_line(exchange: Exchange, culprit: bool = False) -> str:
    """An exchange in one line: method, URL, status, body size, time."""
    note = " (rate limited; retried, not judged)" if exchange.retried else ""
    blame = " &mdash; <b>its answer broke the rule</b>" if culprit else ""
    return (f"<b>{escape(exchange.method)} {escape(exchange.url)}</b> &rarr; {escape(_status(exchange))}, "
            f"{_size(exchange)}, {exchange.elapsed_s * 1000:.0f} ms{note}{blame}")


def exchange_html(exchange: Exchange, body_cap: int | None = None, *, culprit: bool = False) -> str:
    request = "\n".join(f"{name}: {value}" for name, value in exchange.request_headers)
    response = "\n".join(f"{name}: {value}" for name, value in exchange.response_headers)
    note = " (rate limited; retried, not judged)" if exchange.retried else ""
    blame = " &mdash; <b>its answer broke the rule</b>" if culprit else ""
    body = pretty_body(exchange.body)
    truncated = " (truncated)" if exchange.body_truncated else ""
    if body_cap is not None and len(body) > body_cap:
        body, truncated = body[:body_cap], f" ... ({len(body) - body_cap} more characters)"
    return (
        f'<div class="cf-exchange{" cf-culprit" if culprit else ""}"><p><b>{escape(exchange.method)} '
        f"{escape(exchange.url)}</b> &rarr; {escape(_status(exchange))}{note} in "
        f"{exchange.elapsed_s * 1000:.0f} ms{blame}</p>"
        f"<pre>{escape_text(request)}</pre><pre>{escape_text(response)}</pre>"
        f"<pre>{escape_text(body)}{truncated}</pre></div>"
    )


def pretty_body(body: str) -> str:
    """The body laid out when it is JSON (one member a line; a short value, such as one job
    of a page, on one line); as received when it is not, or nests too deeply to re-serialise
    (a hostile body must not stop the report from being written, nor swell it)."""
    try:
        laid_out = _layout(json.loads(body), "")
    except (ValueError, RecursionError):
        return body
    return laid_out if len(laid_out) <= 2 * len(body) + 1000 else body


def _layout(value: Any, indent: str) -> str:
    compact = json.dumps(value)
    if not isinstance(value, (dict, list)) or not value or (indent and len(compact) <= COMPACT_WIDTH):
        return compact
    inner = indent + "  "
    if isinstance(value, dict):
        members = [f"{inner}{json.dumps(key)}: {_layout(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    return "[\n" + ",\n".join(f"{inner}{_layout(item, inner)}" for item in value) + f"\n{indent}]"


def _status(exchange: Exchange) -> str:
    return exchange.error or f"{exchange.status}"


def _size(exchange: Exchange) -> str:
    size = len(exchange.body.encode("utf-8", "surrogatepass"))
    text = f"{size / 1000:.1f} kB" if size >= 1000 else f"{size} B"
    return text + (" (truncated)" if exchange.body_truncated else "")


# -- matrix text ----------------------------------------------------------------------------

def _checks_text(check_ids: tuple[str, ...], outcomes: Mapping[str, str]) -> list[str]:
    """One line per check function, each check linked; parametrized cases folded (the function
    links to its first case), those that did not pass named."""
    by_function: dict[str, list[str]] = {}
    for check_id in check_ids:
        by_function.setdefault(check_id.split("[", 1)[0], []).append(check_id)
    lines = []
    for function, cases in by_function.items():
        if len(cases) == 1:
            lines.append(_link(cases[0], outcomes.get(cases[0], "?"), escape(cases[0])))
            continue
        lines.append(f"{_link(cases[0], outcomes.get(cases[0], '?'), escape(function))} ({len(cases)} cases)")
        lines += [f"&nbsp;&nbsp;{escape(outcomes.get(c, '?'))}: "
                  f"{_link(c, outcomes.get(c, '?'), escape(c.split('[', 1)[1].rstrip(']')))}"
                  for c in cases if outcomes.get(c) != "passed"]
    return lines


def _link(check_id: str, outcome: str, text: str) -> str:
    return f'<a href="#{escape(check_link(check_id, outcome))}">{text}</a>'


def _link_requirement_ids(text: str, requirements: dict[str, Any]) -> str:
    """Requirement ids in already escaped text, linked to their matrix rows."""
    return re.sub(r"\b[A-Z]{2,5}-\d{2}\b",
                  lambda m: f'<a href="#{escape(requirement_anchor(m.group(0)))}">{m.group(0)}</a>'
                  if m.group(0) in requirements else m.group(0), text)


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


__all__ = ["check_anchor", "check_extras", "escape", "exchange_html", "metadata", "row_anchor", "summary",
           "table_row_cell"]
