"""report.html is a page people open: a failing report stays small, shows the verdict and the
first failed requirement first, links the requirement matrix to the checks, shows each shared
exchange once, reads with WCAG AA contrast, and loads in a real browser without console errors.

The browser tests need headless Chromium at /usr/bin/chromium (Debian: ``apt-get install -y
chromium``); without it they are skipped, saying so.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import html as report_html
from conformance.reference import ReferenceServer
from conftest import RUN_TIMEOUT_S, SuiteRun, clean_env

FAULTS = ("offset-off-by-one", "limit-off-by-one", "filter-after-pagination")
MAX_REPORT_BYTES = 1_000_000
AA_BODY_TEXT = 4.5  # WCAG 2 AA, 1.4.3: text below 18 pt (14 pt bold)
AA_LARGE_TEXT = 3.0
SCREEN = (1280, 900)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium is not installed at /usr/bin/chromium: install it with "
           "`apt-get update && apt-get install -y chromium` (Debian, as root) to run the report page in a browser")


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SuiteRun]:
    """``conformance run`` against a reference deployment with one fault, once per fault."""
    runs: dict[str, SuiteRun] = {}

    def run(fault: str) -> SuiteRun:
        if fault not in runs:
            workdir = tmp_path_factory.mktemp(fault)
            with ReferenceServer(behaviour=fault) as server:
                completed = subprocess.run(
                    [sys.executable, "-m", "conformance", "run", "--report-dir", str(workdir / "reports")],
                    env=clean_env(server.suite_env(workdir)), cwd=workdir, capture_output=True, text=True,
                    timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
            result = SuiteRun(completed.returncode, completed.stdout, completed.stderr, workdir / "reports")
            assert result.exit_code == 1 and result.verdict == "nonconformant", completed.stdout[-3000:]
            runs[fault] = result
        return runs[fault]

    return run


# -- the page as written ---------------------------------------------------------------------

def page(run: SuiteRun) -> str:
    return (run.report_dir / "report.html").read_text(encoding="utf-8")


def static_part(text: str) -> str:
    """The page without pytest-html's data blob (the results table, rendered by its script)."""
    return re.sub(r'data-jsonblob="[^"]*"', 'data-jsonblob=""', text)


def table_rows(text: str) -> list[dict]:
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob is not None
    return [test for tests in json.loads(html.unescape(blob.group(1)))["tests"].values() for test in tests]


def drawn(text: str) -> str:
    """What pytest-html's script inserts into the page: the results table's rows and extras."""
    rows = table_rows(text)
    return "".join([cell for row in rows for cell in row["resultsTableRow"]]
                   + [extra["content"] for row in rows for extra in row["extras"]])


def element_ids(text: str) -> set[str]:
    """Every element id of the page once pytest-html's script has drawn the results table."""
    ids = re.findall(r'\sid="([^"]*)"', static_part(text) + drawn(text))
    return {html.unescape(value) for value in ids} | {"results-table"}


def matrix(text: str) -> str:
    start = text.index('id="cf-requirements"')
    return text[start:text.index("</table>", start)]


def sections(text: str) -> dict[str, str]:
    """Each failed check's section: its element id -> its markup."""
    return dict(re.findall(r'<section class="cf-check" id="([^"]+)">(.*?)</section>', text, flags=re.S))


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_report_stays_under_1_mb(failing_run, fault):
    run = failing_run(fault)
    size = (run.report_dir / "report.html").stat().st_size
    assert size < MAX_REPORT_BYTES, f"report.html of {fault} is {size} bytes"


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_every_matrix_link_resolves_to_an_element_of_the_page(failing_run, fault):
    text = page(failing_run(fault))
    ids = element_ids(text)
    rows = re.findall(r'<tr id="[^"]*" data-requirement="([^"]+)" data-outcome="(\w+)">(.*?)</tr>', matrix(text))
    assert rows
    for requirement, outcome, row in rows:
        links = [html.unescape(href) for href in re.findall(r'href="#([^"]+)"', row)]
        if outcome != "not_checked" or "no check for it ran" not in row:
            assert links, f"matrix row {requirement} links to no check"
        missing = [link for link in links if link not in ids]
        assert not missing, f"matrix row {requirement} links to {missing}, which no element of the page has"
        if outcome == "failed":  # a failed requirement leads to the evidence of a failed check
            assert any(link.startswith("cf-check-") for link in links), requirement
    every_link = {html.unescape(href) for href in re.findall(r'href="#([^"]+)"', static_part(text) + drawn(text))}
    assert not every_link - ids


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_failed_checks_show_their_culprit_last_and_shared_exchanges_once(failing_run, fault):
    run = failing_run(fault)
    text = static_part(page(run))
    shown = sections(text)
    failed = [check for check in run.results["checks"] if check["outcome"] in ("failed", "error")]
    assert len(shown) == len(failed) > 0
    for check in failed:
        section = shown[report_html.check_anchor(check["id"])]
        assert html.escape(check["curl"]) in section, check["id"]
        culprit_url = next(word for word in shlex.split(check["curl"]) if word.startswith("http"))
        exchanges = re.findall(r"<b>[A-Z]+ (\S+)</b>", section)
        assert exchanges and html.unescape(exchanges[-1]) == culprit_url, check["id"]
    numbers = re.findall(r'<div id="cf-ex-(\d+)">', text)
    assert len(numbers) == len(set(numbers))
    # An exchange (request and body) is shown in full in one place: its check's section, or
    # once under shared exchanges when several failed checks list it.
    places: dict[tuple[str, str], set[str]] = {}
    containers = {**shown, "cf-shared": text[text.index('id="cf-shared"'):] if numbers else ""}
    for name, markup in containers.items():
        for request, body in re.findall(FULL_EXCHANGE, markup, flags=re.S):
            places.setdefault((request, body), set()).add(name)
    assert places
    repeated = {request: sorted(names) for (request, _), names in places.items() if len(names) > 1}
    assert not repeated


FULL_EXCHANGE = (r'<div class="cf-exchange[^"]*"><p><b>([A-Z]+ \S+)</b>'
                 r".*?<pre>.*?</pre><pre>.*?</pre><pre>(.*?)</pre></div>")


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS[:1])
def test_the_verdict_and_the_first_failed_requirement_come_first(failing_run, fault):
    text = static_part(page(failing_run(fault)))
    body = text[text.index("<body>"):]
    verdict = body.index('id="cf-verdict"')
    first_row = body.index("data-requirement=", body.index('id="cf-requirements"'))
    assert verdict < first_row < body.index('id="cf-failures"') < body.index('id="results-table"')
    assert 'data-outcome="failed"' in body[first_row:first_row + 80]


# -- contrast of the styles ------------------------------------------------------------------

NAMED = {"black": "#000000", "white": "#ffffff", "green": "#008000", "orange": "#ffa500", "red": "#ff0000"}


def rules(css: str) -> dict[str, dict[str, str]]:
    """selector -> its declarations (later ones win), each selector of a list on its own."""
    found: dict[str, dict[str, str]] = {}
    css = re.sub(r"/\*.*?\*/|</?style>", "", css, flags=re.S)
    for selectors, block in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = dict((name.strip(), value.strip()) for name, _, value in
                            (item.partition(":") for item in block.split(";") if ":" in item))
        for selector in selectors.split(","):
            found.setdefault(" ".join(selector.split()), {}).update(declarations)
    return found


def rgb(colour: str) -> tuple[float, float, float]:
    """A CSS colour as this test meets them (hex and a few names); no background is white."""
    colour = NAMED.get(colour.lower(), "#ffffff" if colour in ("none", "transparent") else colour)
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    assert re.fullmatch(r"[0-9a-fA-F]{6}", digits), f"colour {colour!r} is not understood by this test"
    return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def contrast(one: tuple[float, ...], other: tuple[float, ...]) -> float:
    def luminance(colour: tuple[float, ...]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_pytest_html_greys_are_overridden_where_they_fail_aa():
    import pytest_html

    theirs = rules((Path(pytest_html.__file__).parent / "resources" / "style.css").read_text(encoding="utf-8"))
    ours = rules(report_html.STYLE)
    failing = []
    for selector, declarations in theirs.items():
        merged = {**declarations, **ours.get(selector, {})}
        if "color" not in merged:
            continue
        background = merged.get("background-color") or merged.get("background") or "#ffffff"
        ratio = contrast(rgb(merged["color"]), rgb(background))
        if ratio < AA_BODY_TEXT:
            failing.append(f"{selector}: {merged['color']} on {background} is {ratio:.2f}:1")
    assert not failing


def test_the_suites_own_colours_meet_aa():
    failing = []
    for selector, declarations in rules(report_html.STYLE).items():
        if "color" in declarations:
            background = declarations.get("background-color") or declarations.get("background") or "#ffffff"
            ratio = contrast(rgb(declarations["color"]), rgb(background))
            if ratio < AA_BODY_TEXT:
                failing.append(f"{selector}: {ratio:.2f}:1")
    assert not failing


# -- in a browser ----------------------------------------------------------------------------

# Appended to a copy of the report: once the page (and pytest-html's table) is drawn, it writes
# what it measured into the DOM, which --dump-dom prints.
AUDIT = """
<script>
window.addEventListener("load", function () {
  function parse(c) { var m = /rgba?\\(([^)]+)\\)/.exec(c); if (!m) return null;
    var p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
  function lum(c) { var a = [c[0], c[1], c[2]].map(function (v) { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * a[0] + 0.7152 * a[1] + 0.0722 * a[2]; }
  function over(top, base) { return [0, 1, 2].map(function (k) { return top[k] * top[3] + base[k] * (1 - top[3]); }); }
  function background(el) { var layers = [];
    for (var e = el; e; e = e.parentElement) { var c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    var base = [255, 255, 255];
    for (var i = layers.length - 1; i >= 0; i--) base = over(layers[i], base);
    return base; }
  var low = {}, checked = 0;
  document.querySelectorAll("body *").forEach(function (el) {
    if (/^(SCRIPT|STYLE|TEMPLATE|TITLE)$/.test(el.tagName) || !el.getClientRects().length) return;
    var text = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.data.trim(); });
    var style = getComputedStyle(el);
    if (!text || style.visibility !== "visible") return;
    checked++;
    var bg = background(el), fg = parse(style.color); fg = over(fg, bg);
    var a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    var size = parseFloat(style.fontSize), large = size >= 24 || (size >= 18.66 && parseInt(style.fontWeight) >= 700);
    if (ratio < (large ? LARGE_TEXT : BODY_TEXT)) {
      var key = el.tagName + "." + el.className + " " + style.color + " on rgb(" + bg.map(Math.round) + ")";
      low[key] = ratio.toFixed(2) + ": " + el.textContent.trim().slice(0, 40); } });
  function rect(el) { if (!el) return null; var r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; }
  var failed = document.querySelector('#cf-requirements tr[data-outcome="failed"]');
  var unresolved = [];
  document.querySelectorAll('a[href^="#"]').forEach(function (a) {
    var id = decodeURIComponent(a.getAttribute("href").slice(1));
    if (!document.getElementById(id)) unresolved.push(id); });
  var out = document.createElement("pre"); out.id = "cf-audit";
  out.textContent = JSON.stringify({
    viewport: [window.innerWidth, window.innerHeight], loadMs: performance.now(),
    verdict: rect(document.getElementById("cf-verdict")),
    firstFailed: failed ? {id: failed.dataset.requirement, line: rect(failed.cells[0])} : null,
    matrixLinks: document.querySelectorAll('#cf-requirements a[href^="#"]').length,
    unresolved: unresolved, checked: checked, lowContrast: low,
    rows: document.querySelectorAll("#results-table tbody.results-table-row").length});
  document.body.appendChild(out);
});
</script>
""".replace("LARGE_TEXT", str(AA_LARGE_TEXT)).replace("BODY_TEXT", str(AA_BODY_TEXT))


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           f"--window-size={SCREEN[0]},{SCREEN[1]}", *args, url],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to the console (Chromium logs each message, errors and uncaught
    exceptions included, as a CONSOLE line)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
@needs_chromium
def test_the_page_loads_in_chromium_without_console_errors(failing_run, tmp_path):
    report = failing_run(FAULTS[0]).report_dir / "report.html"
    screenshot = tmp_path / "first-screen.png"
    shot = chromium(report.as_uri(), tmp_path / "profile", f"--screenshot={screenshot}")
    assert screenshot.is_file(), shot.stderr[-3000:]
    assert png_size(screenshot) == SCREEN
    assert console_messages(shot.stderr) == []
    dom = chromium(report.as_uri(), tmp_path / "profile-dom", "--dump-dom")
    assert console_messages(dom.stderr) == []
    assert 'id="cf-verdict"' in dom.stdout and "Verdict: NONCONFORMANT" in dom.stdout
    assert 'class="results-table-row' in dom.stdout  # pytest-html's script drew the table


@pytest.mark.slow
@needs_chromium
def test_in_chromium_the_first_screen_shows_the_verdict_and_the_first_failure(failing_run, tmp_path):
    run = failing_run(FAULTS[0])
    text = page(run)
    audited = tmp_path / "report-audited.html"  # the report is self-contained: a copy reads the same
    at = text.rindex("</body>")
    audited.write_text(text[:at] + AUDIT + text[at:], encoding="utf-8")
    dom = chromium(audited.as_uri(), tmp_path / "profile", "--dump-dom")
    assert console_messages(dom.stderr) == []
    found = re.search(r'<pre id="cf-audit">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found, dom.stderr[-3000:]
    audit = json.loads(html.unescape(found.group(1)))
    height = audit["viewport"][1]
    assert audit["verdict"] is not None and audit["verdict"]["bottom"] <= height, audit
    first_failed = min(rid for rid, r in run.results["requirements"].items() if r["outcome"] == "failed")
    assert audit["firstFailed"] is not None and audit["firstFailed"]["id"] == first_failed
    assert 0 < audit["firstFailed"]["line"]["top"] and audit["firstFailed"]["line"]["top"] + 16 <= height, audit
    assert audit["matrixLinks"] > 0 and audit["unresolved"] == []
    assert audit["rows"] == len(table_rows(text))
    assert audit["checked"] > 100 and audit["lowContrast"] == {}
