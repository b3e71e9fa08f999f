"""The pytest plugin: options, fixtures and hooks that turn check items into the result model.

Loaded by ``conformance/checks/conftest.py``, so the checks run the same way under
``conformance run`` and under plain ``pytest conformance/checks --base-url ...``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from conformance import catalogue, config, evidence, html, hypothesis_profiles, reports
from conformance.client import Exchange, RequestFailed
from conformance.model import ListingChanged, ListingModel, ListingUnavailable, Walk
from conformance.results import CheckRecord
from conformance.session import RunContext, Target

PLUGIN_NAME = "conformance-run"
PLUGIN_KEY = pytest.StashKey["ConformancePlugin"]()
REQUIREMENT_MARK = "requirement"


# Settings whose pytest option Hypothesis' own plugin already registers: read its value instead.
HYPOTHESIS_OPTIONS = {"hypothesis_profile": "hypothesis_profile", "seed": "hypothesis_seed"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "conformance suite (option > environment > file)")
    for spec in config.SETTINGS:
        if spec.name in HYPOTHESIS_OPTIONS:
            continue
        help_text = f"{spec.help} [env {spec.env}]" if spec.env else spec.help
        if spec.flag:
            group.addoption(spec.option, action="store_true", default=None,
                            dest=f"conformance_{spec.name}", help=help_text)
        else:
            group.addoption(spec.option, default=None, metavar=spec.metavar,
                            dest=f"conformance_{spec.name}", help=help_text)
    group.addoption("--config", default=None, metavar="FILE", dest="conformance_config",
                    help=f"TOML file with the same settings (default: ./{config.DEFAULT_CONFIG_FILE} when present)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{REQUIREMENT_MARK}(*ids): contract requirement ids a check verifies")
    plugin = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, ConformancePlugin)), None)
    if plugin is None:  # plain pytest: open the run from the options; `conformance run` passes its own
        plugin = ConformancePlugin(_open_from_options(config), owns_context=True)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    config.stash[PLUGIN_KEY] = plugin
    plugin.configure_reports(config)
    plugin.configure_hypothesis()


def _context(request: pytest.FixtureRequest) -> RunContext:
    return request.config.stash[PLUGIN_KEY].context


@pytest.fixture(scope="session")
def run_context(request: pytest.FixtureRequest) -> RunContext:
    return _context(request)


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    return _context(request).target


@pytest.fixture(scope="session")
def model(request: pytest.FixtureRequest) -> ListingModel:
    return _context(request).model


@pytest.fixture(scope="session")
def hypothesis_run(request: pytest.FixtureRequest) -> hypothesis_profiles.HypothesisRun:
    """The run's Hypothesis profile, seed and example count."""
    return request.config.stash[PLUGIN_KEY].hypothesis


@pytest.fixture
def listing(request: pytest.FixtureRequest) -> Walk:
    """The walked listing; a check that needs it is not checked when it cannot be walked."""
    return _context(request).model.listing()


def _open_from_options(pytest_config: pytest.Config) -> RunContext:
    options = {spec.name: pytest_config.getoption(HYPOTHESIS_OPTIONS.get(spec.name, f"conformance_{spec.name}"), None)
               for spec in config.SETTINGS}
    config_file = pytest_config.getoption("conformance_config")
    try:
        settings = config.resolve(options, config_file=Path(config_file) if config_file else None)
    except config.ConfigError as error:
        raise pytest.UsageError(str(error)) from None
    if settings.profile == "certify":
        raise pytest.UsageError("--profile certify writes a signed bundle: use 'conformance run --profile certify'")
    context = RunContext.open(settings)
    try:
        context.preflight()
    except RequestFailed as error:
        context.close()
        pytest.exit(f"target unreachable: {error}", returncode=3)
    return context


class ConformancePlugin:
    """Registered once per run; holds the run context and records every check's outcome."""

    def __init__(self, context: RunContext, *, owns_context: bool = False) -> None:
        self.context = context
        self.owns_context = owns_context
        self.records: dict[str, CheckRecord] = {}
        self._current: CheckRecord | None = None
        self._phase = "setup"
        self.report_dir = context.settings.report_dir
        self.html_path: Path | None = None
        self.hypothesis: hypothesis_profiles.HypothesisRun | None = None
        context.client.add_observer(self._capture)

    # -- configuration -------------------------------------------------------------------

    def configure_reports(self, pytest_config: pytest.Config) -> None:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        if getattr(pytest_config.option, "htmlpath", None) is None:
            pytest_config.option.htmlpath = str(self.report_dir / reports.HTML_FILE)
        pytest_config.option.self_contained_html = True
        self.html_path = Path(pytest_config.option.htmlpath)

    def configure_hypothesis(self) -> None:
        self.hypothesis = hypothesis_profiles.configure(self.context.settings)
        self.context.result.hypothesis = self.hypothesis.describe()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # pytest-metadata copies CI environment variables into the report; publish only ours.
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:
            return
        metadata = session.config.stash.get(metadata_key, None)
        if metadata is not None:
            metadata.clear()
            metadata.update(html.metadata(self.context.result))

    # -- collection ----------------------------------------------------------------------

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            ids = requirement_ids(item)
            if not ids:
                raise pytest.UsageError(f"{check_id(item)} cites no requirement (mark it with @pytest.mark.requirement)")
            for rid in ids:
                catalogue.get(rid)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # The selected checks run ahead so their requests overlap (conformance/prefetch.py).
        if not session.config.option.collectonly:
            self.context.ahead.start(session.items)

    # -- running -------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        record = CheckRecord(check_id(item), requirement_ids(item))
        self.records[record.id] = record
        self.context.result.checks.append(record)
        self._current = record
        try:
            return (yield)
        finally:
            self._current = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self._phase = "setup"
        with _judged_exceptions():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self._phase = "call"
        try:
            with _judged_exceptions(), evidence.collecting(self._judged), self.context.ahead.replaying(item):
                try:
                    return (yield)
                except ListingChanged as error:
                    if not error.fresh:
                        raise
                    self._repeat_on_fresh_listing(item)
        finally:
            self._phase = "teardown"

    def _repeat_on_fresh_listing(self, item: pytest.Item) -> None:
        """The listing changed under a comparison: the model already holds a fresh walk, so the
        check runs once more against it. A second change makes it not checked (see below)."""
        funcargs = getattr(item, "funcargs", {})
        if "listing" in funcargs:
            funcargs["listing"] = self.context.model.listing()
        if self._current is not None:
            self._current.note = "the listing changed during the run; passed when repeated against a fresh walk"
        try:
            item.runtest()
        except ListingChanged as error:
            pytest.skip(f"{error}: the comparison was repeated against a fresh walk and still differed")

    def _capture(self, exchange: Exchange) -> None:
        if self._current is not None and self._phase == "call" and not exchange.ahead:
            self._current.attach(exchange, sent=True)

    def _judged(self, exchange: Exchange) -> None:
        if self._current is not None:  # sent ahead for this check: it counts as sent by it
            self._current.attach(exchange, sent=exchange.claim())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report: pytest.TestReport = yield
        record = self.records.get(check_id(item))
        if record is None:
            return report
        record.duration_s += report.duration
        if report.when == "call" or report.outcome != "passed":
            self._record_outcome(record, report, call)
        self._redact(report)
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            report.extras = getattr(report, "extras", []) + html.check_extras(record)
        return report

    def _record_outcome(self, record: CheckRecord, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
        if report.outcome == "passed":
            if record.outcome == "passed":
                record.message = record.note
            return
        if report.skipped:
            record.outcome = "not_checked"
            record.message = _skip_reason(report)
            return
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, AssertionError):
            record.outcome = "failed"
            record.message = _one_paragraph(str(error)) or "assertion failed"
            record.violated = tuple(getattr(error, "requirements", ()))
            report.longrepr = self.context.client.redactor.text(record.message)
        else:
            record.outcome = "error"
            # A request that got no usable answer says why in its own words (never the deployment's fault).
            text = str(error) if isinstance(error, RequestFailed) else f"{type(error).__name__}: {error}"
            record.message = _one_paragraph(text) if error else "error"
        record.message = self.context.client.redactor.text(record.message)

    def _redact(self, report: pytest.TestReport) -> None:
        redact = self.context.client.redactor.text
        if report.longrepr is not None and not isinstance(report.longrepr, tuple):
            report.longrepr = redact(str(report.longrepr))
        report.sections = [(title, redact(content)) for title, content in report.sections]

    # -- the end -------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.context.ahead.stop()
        result = self.context.result
        result.finished_at = datetime.now(timezone.utc)
        result.requests = self.context.client.request_count
        result.listing = self.context.model.facts()
        reports.write_results_json(result, self.report_dir)
        reports.write_junit(result, self.report_dir)
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR):
            return
        session.exitstatus = result.exit_code()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("conformance verdict")
        for line in reports.summary_lines(self.context.result, self.html_path):
            terminalreporter.write_line(line)
        terminalreporter.write_line(self.context.ahead.describe())

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.owns_context:
            self.context.close()

    # -- report.html ---------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = "Conformance report: List music generation jobs"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        prefix.extend(html.summary(self.context.result))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, "<th>Requirements</th>")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        record = self.records.get(_report_check_id(report))
        cells.insert(2, f"<td>{html.escape(' '.join(record.requirements)) if record else ''}</td>")


def requirement_ids(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers(REQUIREMENT_MARK):
        ids.extend(mark.args)
    return tuple(dict.fromkeys(ids))


def check_id(item: pytest.Item) -> str:
    """Stable id whatever the rootdir: ``test_limit.py::test_page_size[7-inside]``."""
    return f"{item.path.name}::{item.name}"


def _report_check_id(report: Any) -> str:
    path, _, name = report.nodeid.partition("::")
    return f"{Path(path).name}::{name}"


@contextmanager
def _judged_exceptions() -> Iterator[None]:
    """Turns 'cannot judge' conditions into a not-checked skip, with the reason."""
    try:
        yield
    except ListingChanged as error:
        pytest.skip(str(error))
    except ListingUnavailable as error:
        pytest.skip(f"the listing could not be walked: {error}")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _one_paragraph(text: str) -> str:
    # pytest appends its own 'assert ...' introspection after our message; the message is ours.
    return text.split("\nassert ")[0].strip()
