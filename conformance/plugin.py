"""The pytest plugin: options, fixtures and hooks that turn check items into the result model.

Loaded by the suite's ``pytest11`` entry point (:mod:`conformance.pytest_entry`) when a pytest
session runs the checks, or else by ``conformance/checks/conftest.py``, so the checks run the
same way under ``conformance run``, ``pytest conformance/checks --base-url ...`` and
``pytest --pyargs conformance.checks --base-url ...``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conformance import (
    catalogue,
    config,
    evidence,
    gate,
    html,
    hypothesis_profiles,
    output,
    plan,
    reports,
    selection,
    summary,
)
from conformance.client import Exchange, RequestFailed
from conformance.model import ListingChanged, ListingModel, ListingUnavailable, Walk
from conformance.plan import RUN_LAST_MARK
from conformance.results import CheckRecord
from conformance.session import CredentialRefused, RunContext, Target

PLUGIN_NAME = "conformance-run"
PLUGIN_KEY = pytest.StashKey["ConformancePlugin"]()
REQUIREMENT_MARK = "requirement"


# Settings whose pytest option Hypothesis' own plugin already registers: read its value instead.
HYPOTHESIS_OPTIONS = {"hypothesis_profile": "hypothesis_profile", "seed": "hypothesis_seed"}
# Settings whose option pytest itself owns with another meaning (pytest's --strict): under plain
# pytest they are set through their environment variable or the --config file.
PYTEST_OWNED_OPTIONS = frozenset({"strict"})


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("conformance", "conformance suite (option > environment > file)")
    taken = _taken_options(parser)
    for spec in config.SETTINGS:
        if spec.name in HYPOTHESIS_OPTIONS or spec.name in PYTEST_OWNED_OPTIONS or _owned(spec, pluginmanager):
            continue
        if spec.option in taken:  # another plugin's option: this setting comes from its variable or --config
            continue
        help_text = f"{spec.help} [env {spec.env}]" if spec.env else spec.help
        if spec.flag:
            group.addoption(spec.option, action="store_true", default=None,
                            dest=f"conformance_{spec.name}", help=help_text)
        elif spec.repeatable:
            group.addoption(spec.option, action="append", default=None, metavar=spec.metavar,
                            dest=f"conformance_{spec.name}", help=help_text)
        else:
            group.addoption(spec.option, default=None, metavar=spec.metavar,
                            dest=f"conformance_{spec.name}", help=help_text)
    if "--config" not in taken:
        group.addoption("--config", default=None, metavar="FILE", dest="conformance_config",
                        help=f"TOML file with the same settings (default: ./{config.DEFAULT_CONFIG_FILE} when present)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{REQUIREMENT_MARK}(*ids): contract requirement ids a check verifies")
    config.addinivalue_line("markers", f"{RUN_LAST_MARK}: a check that judges the whole run; it runs last")
    config.addinivalue_line("markers", f"{plan.NEEDS_MARK}(declare): the requests a check needs, fetched before "
                                       "the checks run (conformance/plan.py)")
    plugin = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, ConformancePlugin)), None)
    if plugin is None:  # plain pytest: open the run from the options; `conformance run` passes its own
        plugin = ConformancePlugin(_open_from_options(config), owns_context=True)
        config.pluginmanager.register(plugin, PLUGIN_NAME)
    config.stash[PLUGIN_KEY] = plugin
    _publish_base_url(config, plugin.context.settings)
    plugin.configure_reports(config)
    plugin.configure_hypothesis()
    plugin.guard_terminal(config)


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
    run = request.config.stash[PLUGIN_KEY].hypothesis
    assert run is not None  # configured with the plugin
    return run


@pytest.fixture
def listing(request: pytest.FixtureRequest) -> Walk:
    """The walked listing; a check that needs it is not checked when it cannot be walked."""
    return _context(request).model.listing()


def _owned(spec: config.SettingSpec, pluginmanager: pytest.PytestPluginManager) -> bool:
    """Whether another active pytest plugin owns this setting's option (pytest-base-url owns
    --base-url): the suite then reads that plugin's option instead of adding a conflicting one."""
    if spec.pytest_owner is None:
        return False
    modules = (sys.modules.get(name) for name in spec.pytest_owner.modules)
    return any(module is not None and pluginmanager.is_registered(module) for module in modules)


def _taken_options(parser: pytest.Parser) -> set[str]:
    """Option strings other plugins already registered (pytest-timeout's --timeout): adding
    them again would end every pytest run with argparse's 'conflicting option string'."""
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]
    options = [option for group in groups if group is not None for option in getattr(group, "options", [])]
    return {name for option in options for name in option.names()}


def _option_value(pytest_config: pytest.Config, spec: config.SettingSpec) -> Any:
    if spec.name in HYPOTHESIS_OPTIONS:
        return pytest_config.getoption(HYPOTHESIS_OPTIONS[spec.name], None)
    if spec.pytest_owner is not None and _owned(spec, pytest_config.pluginmanager):
        return pytest_config.getoption(spec.pytest_owner.dest, None)
    return pytest_config.getoption(f"conformance_{spec.name}", None)


def _ini_values(pytest_config: pytest.Config) -> dict[str, Any]:
    """The owning plugins' ini values (pytest-base-url's ``base_url``), below the settings file."""
    values = {spec.name: _ini(pytest_config, spec.pytest_owner.ini) for spec in config.SETTINGS
              if spec.pytest_owner is not None and spec.pytest_owner.ini is not None
              and _owned(spec, pytest_config.pluginmanager)}
    return {name: value for name, value in values.items() if value}


def _ini(pytest_config: pytest.Config, name: str) -> Any:
    try:
        return pytest_config.getini(name)
    except ValueError:  # the owner registers no ini of that name
        return None


def _publish_base_url(pytest_config: pytest.Config, settings: config.Settings) -> None:
    """pytest-base-url's ``base_url`` fixture and report header name the deployment under test
    (the bundled reference's address when none was given)."""
    spec = config.SPECS_BY_NAME["base_url"]
    if spec.pytest_owner is not None and _owned(spec, pytest_config.pluginmanager):
        setattr(pytest_config.option, spec.pytest_owner.dest, settings.base_url)


def _open_from_options(pytest_config: pytest.Config) -> RunContext:
    options = {spec.name: _option_value(pytest_config, spec) for spec in config.SETTINGS}
    config_file = pytest_config.getoption("conformance_config", None)
    try:
        settings = config.resolve(options, config_file=Path(config_file) if config_file else None,
                                  pytest_ini=_ini_values(pytest_config))
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
    except CredentialRefused as error:
        context.close()
        pytest.exit(f"nothing judged: {error}", returncode=3)
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
        self.decision: gate.GateDecision | None = None  # the release gate's exit code, once the run ended
        self.summary: summary.SummaryWritten | None = None
        self.selection_note: str | None = None  # what --last-failed found, for the console
        self.usage_error: str | None = None  # the selection left no check to run
        self._collected = 0
        context.client.add_observer(self._capture)

    # -- configuration -------------------------------------------------------------------

    def configure_reports(self, pytest_config: pytest.Config) -> None:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        if getattr(pytest_config.option, "htmlpath", None) is None:
            pytest_config.option.htmlpath = str(self.report_dir / reports.HTML_FILE)
        pytest_config.option.self_contained_html = True
        self.html_path = Path(pytest_config.option.htmlpath)

    def guard_terminal(self, pytest_config: pytest.Config) -> None:
        """pytest's terminal output passes the run's redaction and control-character escaping
        (``conformance run`` already guards the whole process's console)."""
        reporter = pytest_config.pluginmanager.get_plugin("terminalreporter")
        writer = getattr(reporter, "_tw", None)
        stream = getattr(writer, "_file", None)
        if stream is not None and not isinstance(stream, output.ConsoleStream):
            writer._file = output.ConsoleStream(stream, self.context.client.redactor)  # type: ignore[union-attr]

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

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            ids = requirement_ids(item)
            if not ids:
                raise pytest.UsageError(f"{check_id(item)} cites no requirement "
                                        "(mark it with @pytest.mark.requirement)")
            for rid in ids:
                catalogue.get(rid)
        self._collected = len(items)
        self._select(config, items)
        items.sort(key=lambda item: item.get_closest_marker(RUN_LAST_MARK) is not None)  # stable

    def _select(self, pytest_config: pytest.Config, items: list[pytest.Item]) -> None:
        """--requirement and --last-failed: the other checks are deselected (and not checked)."""
        settings = self.context.settings
        wanted = selection.matching_requirements(settings.requirement) if settings.requirement else None
        rerun = None
        if settings.last_failed:
            previous = selection.previous_failures(self.report_dir)
            self.selection_note, rerun = previous.note, previous.check_ids
        kept = [item for item in items if selection.is_selected(check_id(item), requirement_ids(item), wanted, rerun)]
        if len(kept) < len(items):
            chosen = {id(item) for item in kept}
            pytest_config.hook.pytest_deselected(items=[item for item in items if id(item) not in chosen])
            items[:] = kept

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Whatever deselects a check (--requirement, --last-failed, -k, -m, --deselect), every
        artifact reports it not checked, "not selected": never silently absent, never passed."""
        for item in items:
            record = CheckRecord(check_id(item), requirement_ids(item), outcome="not_checked",
                                 message=selection.NOT_SELECTED)
            if record.requirements and record.id not in self.records:
                self.records[record.id] = record
                self.context.result.checks.append(record)

    def pytest_report_collectionfinish(self) -> str | None:
        return self.selection_note

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not session.items:
            self._nothing_selected(session.config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Before the first check runs: fetch what the selected checks declared (conformance/plan.py)."""
        if session.config.option.collectonly or not session.items:
            return
        self.context.engine.fetch(session.items, {"target": self.context.target, "model": self.context.model,
                                                  "listing": self.context.model.listing,
                                                  "hypothesis_run": self.hypothesis})

    def _nothing_selected(self, pytest_config: pytest.Config) -> None:
        """A selection that leaves no check is a usage error: no check runs and no report is
        written (the report folder keeps the previous run's)."""
        self.usage_error = selection.nothing_selected(self._collected, _selectors(pytest_config, self.context.settings),
                                                      getattr(pytest_config.option, "keyword", ""))
        for plugin in pytest_config.pluginmanager.get_plugins():
            if type(plugin).__module__.startswith("pytest_html.") and hasattr(plugin, "_generate_report"):
                pytest_config.pluginmanager.unregister(plugin)
        raise pytest.UsageError(self.usage_error)

    # -- running -------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        record = CheckRecord(check_id(item), requirement_ids(item))
        # What the plan fetched for it: the requests it was the first to declare.
        record.requests_sent += len(self.context.engine.sent_for(record.id))
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
        # A run-last check judges what was already sent (it sends nothing): it runs whatever the time.
        if time.monotonic() > self.context.deadline and item.get_closest_marker(RUN_LAST_MARK) is None:
            pytest.skip(f"time budget: the run reached {config.setting_label('max_duration')} = "
                        f"{self.context.settings.max_duration:g} s before this check started")
        with _judged_exceptions():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self._phase = "call"
        try:
            with (_judged_exceptions(), evidence.collecting(self._judged, self._remark),
                  self.context.engine.answering(item)):
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
        if self._current is not None and self._phase == "call":
            self._current.attach(exchange, sent=True)

    def _remark(self, text: str) -> None:
        """What the running check says it covered: its message when it passes."""
        if self._current is not None and text not in (self._current.note or ""):
            self._current.note = f"{self._current.note}; {text}" if self._current.note else text

    def _judged(self, exchange: Exchange) -> None:
        if self._current is not None:  # a shared answer, or one the plan fetched (counted already)
            self._current.attach(exchange, sent=False)

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
            setattr(report, "extras", getattr(report, "extras", []) + html.check_extras(record))  # noqa: B010 - pytest-html's
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
            self._record_failure(record, report, error)
            return
        record.outcome = "error"
        # A request that got no usable answer says why in its own words (never the deployment's
        # fault), in one line: the same cause must not print a traceback for every check.
        text = str(error) if isinstance(error, RequestFailed) else f"{type(error).__name__}: {error}"
        record.message = _one_paragraph(text) if error else "error"
        if isinstance(error, RequestFailed):
            report.longrepr = f"not judged: {record.message}"
        record.message = self.context.client.redactor.text(record.message)

    def _record_failure(self, record: CheckRecord, report: pytest.TestReport, error: AssertionError) -> None:
        """A broken rule: the message, the requirements it names, the exchange whose answer broke
        it (its curl reproduces the failure), and what the check did not reach (not checked)."""
        redact = self.context.client.redactor.text
        record.outcome = "failed"
        record.message = redact(_one_paragraph(str(error)) or "assertion failed")
        record.violated = tuple(getattr(error, "requirements", ()))
        culprit = getattr(error, "evidence", None)
        if culprit is not None:
            record.blame(culprit)
        for unreached in record.split_at_premise():
            self.records[unreached.id] = unreached
            self.context.result.checks.append(unreached)
        if record.outcome == "not_checked":  # it failed only a premise: pytest reports it skipped too
            report.outcome = "skipped"
            report.longrepr = (report.location[0], report.location[1] or 0, f"Skipped: {record.message}")
            return
        report.longrepr = redact(_failure_text(record))

    def _redact(self, report: pytest.TestReport) -> None:
        redact = self.context.client.redactor.text
        if report.longrepr is not None and not isinstance(report.longrepr, tuple):
            report.longrepr = redact(str(report.longrepr))
        report.sections = [(title, redact(content)) for title, content in report.sections]

    # -- the end -------------------------------------------------------------------------

    def pytest_internalerror(self, excrepr: Any, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.context.result.run_error = _one_paragraph(f"internal error of the suite: {excinfo.typename}: "
                                                       f"{excinfo.value}")[:500]

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if excinfo.errisinstance(KeyboardInterrupt):  # not pytest.exit(), which comes here too
            self._interrupted()

    def _interrupted(self) -> None:
        result, engine = self.context.result, self.context.engine
        where = (f"while the checks' requests were fetched ({engine.sent} sent), before the first check"
                 if engine.fetching else f"during check {len(result.checks)}")
        result.interrupted = f"interrupted (SIGINT) {where}; what had not run by then was not checked"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.usage_error is not None:
            return
        result = self.context.result
        if exitstatus == pytest.ExitCode.INTERRUPTED and not result.interrupted:
            self._interrupted()
        if exitstatus == pytest.ExitCode.INTERNAL_ERROR and not result.run_error:
            result.run_error = "internal error of the suite (see the console)"
        result.finished_at = datetime.now(UTC)
        result.requests = self.context.client.request_count
        result.listing = self.context.model.facts()
        redactor = self.context.client.redactor
        reports.write_results_json(result, self.report_dir, redactor)
        reports.write_junit(result, self.report_dir, redactor)
        self.decision = gate.decide(result, self.context.settings)
        self.summary = summary.write(result, self.decision, self.report_dir, redactor)
        if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            return
        session.exitstatus = self.decision.exit_code

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.usage_error is not None:
            return
        terminalreporter.section("conformance verdict")
        for line in reports.summary_lines(self.context.result, self.html_path):
            terminalreporter.write_line(line)
        terminalreporter.write_line(self.context.engine.describe())
        budget = self.context.result.budget_line()
        if budget:
            terminalreporter.write_line(f"{budget} (per requirement: {summary.SUMMARY_FILE}, {reports.RESULTS_FILE})")
        for line in self.decision.lines() if self.decision is not None else ():
            terminalreporter.write_line(line)
        if self.owns_context:  # `conformance run` names the artifacts as its last lines
            for line in summary.artifact_lines(self.report_dir, self.summary):
                terminalreporter.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Last, after pytest-html wrote report.html: whatever any writer left in the report
        # folder passes the run's redaction once more.
        output.sweep(self.report_dir, self.context.client.redactor)
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
        cells.insert(2, html.table_row_cell(record, report.when, report.outcome))


def _selectors(pytest_config: pytest.Config, settings: config.Settings) -> list[str]:
    """What narrowed the run, as a person typed it."""
    option = pytest_config.option
    given = [(settings.requirement, f"--requirement {','.join(settings.requirement)}"),
             (settings.last_failed, "--last-failed"),
             (getattr(option, "keyword", ""), f"-k {getattr(option, 'keyword', '')!r}"),
             (getattr(option, "markexpr", ""), f"-m {getattr(option, 'markexpr', '')!r}"),
             (getattr(option, "deselect", None), "--deselect")]
    return [text for value, text in given if value]


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
    """Turns 'cannot judge' conditions into a not-checked skip, with the reason (a spent
    request budget, --max-requests, included: never passed, never an error)."""
    from conformance.client import BudgetExhausted

    try:
        yield
    except ListingChanged as error:
        pytest.skip(str(error))
    except ListingUnavailable as error:
        pytest.skip(f"the listing could not be walked: {error}")
    except BudgetExhausted as error:
        pytest.skip(f"request budget ({error.budget})")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _failure_text(record: CheckRecord) -> str:
    """A failure on the console: the message and the curl that reproduces it."""
    message, curl = record.message or "", record.curl
    if not curl or curl in message:
        return message
    return f"{message}\nreproduce: {curl}"


def _one_paragraph(text: str) -> str:
    # pytest appends its own 'assert ...' introspection after our message; the message is ours.
    return text.split("\nassert ")[0].strip()
