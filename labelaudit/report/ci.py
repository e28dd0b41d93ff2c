"""What CI systems read: the gate's one-line summary, JUnit XML and GitHub Actions annotations."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from labelaudit._text import human_line, printable

STATUS_MARK = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def shown_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def summary_line(data: dict[str, Any]) -> str:
    """The one-line verdict (stderr and the text report), escaped with `human_line`."""
    s = data["summary"]
    return human_line(
        f"labelaudit gate: {s['verdict'].upper()} ({s['passed']} passed, {s['failed']} failed, "
        f"{s['errors']} uncomputable, {s['skipped']} skipped; failing on {s['fail_on']})"
    )


def render_junit(data: dict[str, Any]) -> str:
    """One testcase per rule. A failure that counts (per --fail-on) is a <failure>; a failing
    warning that does not count goes to <system-out>; an uncomputable rule is an <error>."""
    findings = data["findings"]
    counted = set(data["summary"]["failing_rules"])
    suite = ET.Element(
        "testsuite",
        name="labelaudit gate",
        tests=str(len(findings)),
        failures=str(sum(f["status"] == "fail" and f["rule"] in counted for f in findings)),
        errors=str(sum(f["status"] == "error" for f in findings)),
        skipped=str(sum(f["status"] == "skipped" for f in findings)),
    )
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname="labelaudit.gate", name=f["rule"])
        # XML 1.0 cannot hold most control characters: a class name's are written escaped.
        text = printable(f"measured {shown_value(f['value'])}, limit {shown_value(f['limit'])}")
        message = printable(f["message"])
        if f["status"] == "fail" and f["rule"] in counted:
            node = ET.SubElement(case, "failure", message=text, type=f["severity"])
            node.text = message
        elif f["status"] == "fail":
            ET.SubElement(case, "system-out").text = f"[{f['severity']}] {message}"
        elif f["status"] == "error":
            node = ET.SubElement(case, "error", message=message, type="uncomputable")
            node.text = message
        elif f["status"] == "skipped":
            ET.SubElement(case, "skipped", message=message)
    return _junit_document(suite)


# A gate that stopped with exit 2 or 3: its JUnit <error>'s type and what the code means.
NOT_RUN = {2: ("bad_input", "bad input or configuration"), 3: ("internal_error", "a bug")}


def render_junit_error(message: str, exit_code: int) -> str:
    """The JUnit file of a gate that could not run (exit 2 or 3): one testcase, `run`, whose
    <error> holds the message shown on stderr, so a CI dashboard shows why."""
    suite = ET.Element(
        "testsuite", name="labelaudit gate", tests="1", failures="0", errors="1", skipped="0"
    )
    case = ET.SubElement(suite, "testcase", classname="labelaudit.gate", name="run")
    shown = printable(message)
    kind, reason = NOT_RUN.get(exit_code, NOT_RUN[3])
    node = ET.SubElement(case, "error", message=shown, type=kind)
    node.text = f"labelaudit gate could not run (exit {exit_code}: {reason}).\n{shown}"
    return _junit_document(suite)


def _junit_document(suite: ET.Element) -> str:
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def escape_data(text: str) -> str:
    """GitHub workflow-command data: %, CR and LF are escaped."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """GitHub workflow-command property values: also ':' and ','."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(data: dict[str, Any]) -> list[str]:
    """`::error` / `::warning` lines for failing and uncomputable rules."""
    lines = []
    for f in data["findings"]:
        if f["status"] not in ("fail", "error"):
            continue
        level = "error" if f["severity"] == "error" else "warning"
        title = escape_property(f"labelaudit gate: {f['rule']}")
        lines.append(f"::{level} title={title}::{escape_data(f['message'])}")
    return lines


def github_error_annotation(message: str) -> str:
    """The `::error` line of a gate that could not run (exit 2 or 3): the message on stderr."""
    title = escape_property("labelaudit gate could not run")
    return f"::error title={title}::{escape_data(message)}"
