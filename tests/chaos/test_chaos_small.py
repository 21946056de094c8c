"""The chaos run, small: one worker per service, one SIGKILL of each, one broker
crash, the webhook receiver down for a while; nothing acknowledged may be lost or
doubled, and every deal closed and order made reaches the receiver, verified."""

import subprocess
import sys

import pytest

from tests.system import PORT_BASE as SESSION_PORT_BASE
from tests.system import ROOT, TEST_KAFKA_PORT

# Its own broker and ports, apart from the session broker other tests use.
KAFKA_PORT, PORT_BASE = TEST_KAFKA_PORT + 100, SESSION_PORT_BASE + 500
COUNTS = (
    *("lost_leads", "dup_leads", "lost_orders", "dup_orders", "dlq"),
    *("lost_webhooks", "unexpected_webhooks", "unverified_webhooks"),
)


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.timeout(420)
def test_nothing_acknowledged_is_lost_or_doubled_under_faults() -> None:
    command = [
        *(sys.executable, "-m", "tests.chaos", "--seed", "17", "--workers", "1"),
        *("--leads", "600", "--rate", "10", "--kills", "1", "--zombie-seconds", "0", "--no-rolling"),
        *("--kafka-port", str(KAFKA_PORT), "--port-base", str(PORT_BASE), "--quiet-seconds", "6"),
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert last.startswith("chaos: "), run.stderr[-5000:]
    figures = dict(pair.split("=") for pair in last.removeprefix("chaos: ").split())
    assert {name: figures[name] for name in COUNTS} == dict.fromkeys(COUNTS, "0"), run.stderr[-5000:]
    assert run.returncode == 0, run.stderr[-5000:]
