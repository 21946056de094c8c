"""The run's report: tables on the console, the whole of it as JSON."""

import json
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.chaos.check import Verdict
from tests.chaos.faults import Fault
from tests.chaos.load import Waits
from tests.chaos.observe import Drain

LEAD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def waits_summary(waits: Waits) -> dict[str, dict[str, float]]:
    return {
        name: {
            "n": len(values),
            "p50_s": round(percentile(values, 50), 3),
            "p99_s": round(percentile(values, 99), 3),
            "max_s": round(max(values), 3),
        }
        for name, values in asdict(waits).items()
        if values
    }


def fault_rows(faults: list[Fault], origin: float) -> list[dict[str, Any]]:
    rows = []
    for fault in faults:
        row = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(fault).items()}
        row["at"] = round(fault.at - origin, 3)
        row["down_s"] = None if fault.down_s is None else round(fault.down_s, 3)
        row["target_s"] = fault.target_s
        row["judged"] = fault.judged
        row["missed_target"] = fault.missed_target
        rows.append(row)
    return rows


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _judged(fault: Fault, figure: str, value: float | None) -> str:
    """The figure; in red when it is the one the fault's target bounds and missed it."""
    shown = _seconds(value)
    return f"[red]{shown}[/red]" if fault.judged == figure and fault.missed_target else shown


def _target(fault: Fault) -> str:
    if fault.target_s is None or fault.judged is None:
        return "-"
    return f"{fault.judged.removesuffix('_s')} {fault.target_s:.1f}"


def _probe_line(probe: dict[str, Any]) -> str:
    parts = []
    for service, s in probe["services"].items():
        failures = ", ".join(f"{what} x{n}" for what, n in s["failures"].items()) or "-"
        longest = _seconds(s["longest_unserved_s"])
        parts.append(f"{service} {s['unserved_reads']}/{s['reads']} (longest {longest}s; {failures})")
    return "; ".join(parts)


def render(
    console: Console,
    *,
    verdict: Verdict,
    faults: list[Fault],
    origin: float,
    waits: Waits,
    retries: Counter[str],
    drain: Drain,
    problems: list[str],
    probe: dict[str, Any] | None = None,
) -> None:
    table = Table(
        title="Faults, in s: at = since the load started; stop = signal to exit; back = fault to a "
        "running process; ready = from that (re)start to /readyz 200; down = fault to ready; "
        "unserved = longest any partition of the service(s) hit had no worker serving it, "
        "from the fault until 60 s after or the service's next fault; goal = issue #17's target"
    )
    columns = (
        *("at", "fault", "target", "under load", "stop", "back", "ready", "down", "unserved"),
        *("partition", "goal", "note"),
    )
    for column in columns:
        table.add_column(column)
    for fault in faults:
        table.add_row(
            f"{fault.at - origin:.1f}",
            fault.kind,
            fault.target,
            "yes" if fault.under_load else "no",
            _seconds(fault.stop_s),
            _seconds(fault.back_s),
            _judged(fault, "ready_s", fault.ready_s),
            _seconds(fault.down_s),
            _judged(fault, "unserved_s", fault.unserved_s),
            fault.unserved_partition or "-",
            _target(fault),
            fault.note.strip(),
        )
    console.print(table)
    if probe is not None:
        console.print("partition probe, reads no worker served: " + _probe_line(probe))
    table = Table(title="Client waits, first try to acknowledgement (s)")
    for column in ("write", "n", "p50", "p99", "max"):
        table.add_column(column)
    for name, s in waits_summary(waits).items():
        table.add_row(name, str(s["n"]), *(f"{s[k]:.2f}" for k in ("p50_s", "p99_s", "max_s")))
    console.print(table)
    if retries:
        console.print("retried tries: " + ", ".join(f"{k} x{n}" for k, n in retries.most_common()))
    render_check(console, verdict, drain, problems)


def render_check(console: Console, verdict: Verdict, drain: Drain, problems: list[str]) -> None:
    """The check's figures, findings and failures."""
    table = Table(title="Check")
    table.add_column("figure")
    table.add_column("value")
    for name in ("acked_leads", "lost_leads", "dup_leads", "acked_closes", "lost_orders", "dup_orders"):
        table.add_row(name, str(getattr(verdict, name)))
    table.add_row("redelivered (same id again)", str(verdict.redelivered))
    table.add_row("dead letters", str(verdict.dlq))
    table.add_row("drained", f"{drain.drained} after {drain.seconds:.0f}s, lag {drain.lag}")
    console.print(table)
    for finding, examples in verdict.findings.items():
        console.print(f"[red]{finding}[/red]: " + "; ".join(examples))
    for failure in [*verdict.failures, *problems[:10]]:
        console.print(f"[red]{failure}[/red]")


def log_excerpts(run_dir: Path, verdict: Verdict, lines: int = 20) -> dict[str, list[str]]:
    """Where the workers' logs mention the first few leads the check found wrong."""
    leads = []
    for examples in verdict.findings.values():
        leads += [m.group() for e in examples[:2] if (m := LEAD_ID.search(e))]
    excerpts: dict[str, list[str]] = {}
    for lead in dict.fromkeys(leads[:5]):
        for log in sorted(run_dir.glob("*.log")):
            hits = [line for line in log.read_text(errors="replace").splitlines() if lead in line]
            if hits:
                excerpts.setdefault(lead, []).extend(f"{log.name}: {h}" for h in hits[:lines])
    return excerpts


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
