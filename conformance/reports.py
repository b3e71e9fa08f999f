"""Artifacts written from the result model: results.json, junit.xml and the console summary.

report.html is pytest-html's, fed from the same model by :mod:`conformance.html`.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance import catalogue
from conformance.output import write_text
from conformance.redaction import Redactor
from conformance.results import CheckRecord, RunResult
from conformance.terminal import visible

RESULTS_FILE = "results.json"
JUNIT_FILE = "junit.xml"
HTML_FILE = "report.html"
LEVEL_ORDER = ("MUST", "SHOULD", "MAY")


def check_level(check: CheckRecord) -> str:
    """The strictest level among the requirements a check cites."""
    levels = {catalogue.get(rid).level for rid in check.requirements}
    return next(level for level in LEVEL_ORDER if level in levels)


def write_results_json(result: RunResult, report_dir: Path, redactor: Redactor) -> Path:
    return write_text(report_dir / RESULTS_FILE, json.dumps(result.to_dict(), indent=2) + "\n", redactor)


# XML 1.0 forbids these characters outright, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    """``text`` as XML 1.0 can carry it: forbidden characters shown as visible escapes."""
    return _NOT_XML.sub(lambda match: visible(match.group(0)), text)


def write_junit(result: RunResult, report_dir: Path, redactor: Redactor) -> Path:
    """One testcase per check. A failed MUST is a failure; a failed SHOULD or MAY is a
    ``<skipped type="warning">`` so CI jobs that count failures stay green, and a check
    that could not run is ``<skipped type="not_checked">``."""
    suite = ET.Element("testsuite", name="conformance", tests=str(len(result.checks)))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for check in result.checks:
        counts_key = _junit_testcase(suite, check)
        if counts_key:
            counts[counts_key] += 1
    for name, count in counts.items():
        suite.set(name, str(count))
    suite.set("time", f"{sum(check.duration_s for check in result.checks):.3f}")
    verdict, reason = result.verdict()
    properties = ET.SubElement(suite, "properties")
    for name, value in (("verdict", verdict), ("verdict_reason", reason or ""),
                        ("base_url", result.base_url), ("organization_id", result.organization_id),
                        ("target", result.target_description())):
        ET.SubElement(properties, "property", name=name, value=value)
    suite[:] = [properties] + [child for child in suite if child is not properties]
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    _xml_safe(root)
    document = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return write_text(report_dir / JUNIT_FILE, "<?xml version='1.0' encoding='utf-8'?>\n" + document + "\n", redactor)


def _xml_safe(element: ET.Element) -> None:
    for node in element.iter():
        node.text = xml_text(node.text) if node.text else node.text
        node.tail = xml_text(node.tail) if node.tail else node.tail
        for name, value in node.attrib.items():
            node.attrib[name] = xml_text(value)


def _junit_testcase(suite: ET.Element, check: CheckRecord) -> str | None:
    module, _, name = check.id.rpartition("::")
    case = ET.SubElement(suite, "testcase", classname=module.removesuffix(".py").replace("/", "."),
                         name=name, time=f"{check.duration_s:.3f}")
    level = check_level(check)
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name="requirements", value=" ".join(check.requirements))
    ET.SubElement(properties, "property", name="level", value=level)
    ET.SubElement(properties, "property", name="outcome", value=check.outcome)
    message = check.message or ""
    counted: str | None = None
    if check.outcome == "failed" and level == "MUST":
        ET.SubElement(case, "failure", message=message).text = _detail(check)
        counted = "failures"
    elif check.outcome == "failed":
        ET.SubElement(case, "skipped", type="warning", message=f"{level} not met: {message}").text = _detail(check)
        counted = "skipped"
    elif check.outcome == "not_checked":
        ET.SubElement(case, "skipped", type="not_checked", message=f"not checked: {message}")
        counted = "skipped"
    elif check.outcome == "error":
        ET.SubElement(case, "error", message=message).text = _detail(check)
        counted = "errors"
    return counted


def _detail(check: CheckRecord) -> str:
    lines = [check.message or ""]
    if check.curl:
        lines += ["", "reproduce:", check.curl]
    return "\n".join(lines)


def summary_lines(result: RunResult, html_path: Path | None) -> list[str]:
    """The console summary: verdict, counts, failed requirements, where the report is."""
    verdict, reason = result.verdict()
    counts = result.counts()
    lines = [
        f"target: {visible(result.target_description())}",
        f"verdict: {verdict.upper()}" + (f" ({reason})" if reason else "")
        + (" - of the bundled reference deployment" if result.reference else ""),
        f"requirements: {counts['passed']} passed, {counts['failed']} failed "
        f"({counts['warnings']} of them SHOULD/MAY warnings), {counts['not_checked']} not checked, "
        f"{counts['error']} error; {result.requests} requests",
    ]
    for rid, req in result.requirements().items():
        if req.outcome in ("failed", "error"):
            lines.append(f"  {req.outcome.upper():7} {rid} [{req.level}] {req.text}")
            lines.append(f"          -> {req.reason}")
    for rid, req in result.requirements().items():
        if req.outcome == "not_checked":
            lines.append(f"  NOT CHECKED {rid} [{req.level}]: {req.reason}")
    if html_path is not None:
        lines.append(f"report: {html_path}")
    return lines
