"""Prints what the container tests measured (image sizes, times) after the run."""

import pytest

REPORT_PROPERTY = "container"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        str(value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, value in getattr(report, "user_properties", [])
        if name == REPORT_PROPERTY
    ]
    if lines:
        terminalreporter.section("container images")
        for line in lines:
            terminalreporter.write_line(line)
