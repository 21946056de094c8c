"""The alert rules: promtool's checks, its unit tests, and what every alert must carry."""

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.chart import ROOT, RULES_FILE, prometheus_bin

RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yaml"))
# The alerts the operations team asked for, by what they watch.
REQUIRED = {
    "LeadflowConsumerLagGrowing",  # consumer lag growing
    "LeadflowDeadLetters",  # a DLQ receiving records
    "LeadflowFollowUpBreachesRising",  # follow-up SLA breaches rising
    "LeadflowNoLeadsCaptured",  # no leads for a long time
    "LeadflowPodNotReady",  # a service not ready
    "LeadflowErrorRateHigh",  # error rate
    "LeadflowHttpErrorRateHigh",  # error rate of the HTTP APIs (5xx)
}


def promtool(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prometheus_bin() / "promtool"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def alerts() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", RULES_FILE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rules_pass_their_unit_tests() -> None:
    assert RULE_TESTS
    done = promtool("test", "rules", *RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    fired = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts().keys() <= fired


def test_the_alerts_that_matter_exist_with_severity_and_explanation() -> None:
    found = alerts()
    assert found.keys() >= REQUIRED
    for name, rule in found.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name
        assert "for" in rule, name
