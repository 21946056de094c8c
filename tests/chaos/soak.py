"""`python -m tests.chaos.soak`: memory under a long steady load.

The chaos machinery without faults, longer: a broker of its own (port 27092, home
in .cache/soak/), one worker per service by default, clients that capture leads
and close every deal won, `--leads` of them (200,000 by default), at `--rate` at
most and with at most `--backlog` leads between capture and close, so the load
settles at what the system sustains. Every 10 s it samples each worker's RSS and
CPU (its children's too, if any) and what its service's main table holds, from
the /metrics a Prometheus would scrape. Once the pipeline has drained, the chaos
check judges from outside: every acknowledged lead and order exactly once, no
dead letter.

The memory verdict, per worker, compares the end of the run with the end of the
warm-up. The tables grow with every lead in this product (each lead, deal and
order is kept), so what growth the data explains depends on where it lives:
- `rocksdb://`: records live on disk; memory holds each partition's database's
  write buffers, block cache and index readers, which fill up to their bound as
  the data grows. The worker's /metrics reports what RocksDB counts of them
  (`leadflow_table_store_memory_bytes`), and RSS keeps their high-water mark (a
  flushed buffer's memory stays with the allocator), so RSS net of the most the
  stores held must not grow more than 20% after the warm-up. A leak per lead or
  per request shows here, and so does a cache that outgrows its bound.
- `memory://` (the runtime's default): every record lives in the heap, so RSS
  grows by a steady cost per record. The figure judged is that cost, the memory
  above the idle worker per stored record, (RSS - RSS idle) / records; it must
  not grow more than 20% after the warm-up. A leak with time, or a per-record
  cost that grows with the table, shows here. A leak that grows exactly with the
  leads looks like storage in this run; the RocksDB run is the one to catch it.
The warm-up is the first 10% of the leads, and 2 minutes at least (see
WARMUP_MIN_SECONDS). The run also fails on anything lost or doubled, a write
never acknowledged, or a worker that crashed (its restart would reset the curve).

Output: a table, the samples as JSON and a plot (PNG) in .cache/soak/, the
workers' logs and data in .cache/soak/run-<store>-<time>/, and a last line
`soak: leads=… orders=… store=… … verdict=pass|fail` (RSS summed over the
workers, from the end of the warm-up to the end); exit 0 only on pass.

    .venv/bin/python -m tests.chaos.soak --leads 5000 [--store rocksdb://] [--workers 2]
"""

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from matplotlib.figure import Figure
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from schemas.access import LocalIssuer
from tests.bench.results import cpu_seconds, machine, memory_mib
from tests.chaos import report
from tests.chaos.__main__ import busy_ports, console, run_issuer, worker_env
from tests.chaos.check import Truth, Verdict, check
from tests.chaos.load import Client, Load, NotAcknowledged, campaign_body, plan_leads
from tests.chaos.observe import Drain, observe, read_records, wait_drained
from tests.chaos.supervisor import (
    SERVICES,
    RunBroker,
    SupervisedWorker,
    Supervisor,
    interrupt_on_sigterm,
    web_port,
)
from tests.system import ROOT

SOAK_DIR = ROOT / ".cache" / "soak"
# What a worker runs on when LEADFLOW_STORE is not set (services/runtime/settings.py;
# named, not imported: the chaos suite never imports a service).
DEFAULT_STORE = "memory://"
# Per service, the counter its /metrics keeps of records added to its main table:
# a lead, a deal, an order (per process; a crash fails the run, so it is the table's).
RECORDS = {
    "marketing": "leadflow_marketing_leads_captured_total",
    "sales": "leadflow_sales_deals_opened_total",
    "orders": "leadflow_orders_created_total",
    # The soak subscribes no receiver: webhooks reads every event and stores no
    # delivery, so its RSS must stay flat (judged as on disk: nothing explains growth).
    "webhooks": "leadflow_webhooks_recorded_total",
}
# A scrape blocks the worker's event loop while it runs, so its time is in the
# samples: one that reads the tables grows with them (sales' and orders' gauges did).
SCRAPE_TIMEOUT = 60.0
# The warm-up ends at the first sample after `--warmup` (10%) of the leads were
# captured, and after 2 minutes of load at least: by then the one-off allocations
# are made (connections, pydantic's validators, aiokafka's fetch and Faust's
# producer buffers, the allocator's arenas sized for the load) and weigh little
# against what the records cost, and 90% of a big run is left to show a trend.
# A fixed time alone would be most of a small run and a sliver of a big one.
WARMUP_MIN_SECONDS = 120.0
# RocksDB's write-ahead log files (its info log is LOG).
WAL = re.compile(r"\d+\.log")
# What the worker's RocksDB stores hold in memory, as RocksDB counts it (absent in memory).
STORE_MEMORY = "leadflow_table_store_memory_bytes"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.soak", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--workers", type=int, choices=(1, 2, 3), default=1, help="workers per service")
    add("--leads", type=int, default=200_000)
    # A ceiling: the backlog sets the pace. When the pipeline is slower, captures
    # wait for closes rather than pile up open deals (a growing backlog is not a
    # leak). One worker per service on a shared 2-core machine went 14-21 leads/s
    # through capture, deal, close and order with these (a close takes 1-2 s).
    add("--rate", type=float, default=100.0, help="captures started per second, at most")
    add("--clients", type=int, default=32, help="captures and closes in flight at most, each")
    add("--backlog", type=int, default=200, help="leads captured and not yet closed, at most")
    add("--won-share", type=float, default=1.0, help="share of deals won; the rest lost")
    add("--store", default=None, help=f"LEADFLOW_STORE, e.g. rocksdb:// (default: {DEFAULT_STORE})")
    add("--seed", type=int, default=None, help="default: a random one, printed")
    add("--sample-seconds", type=float, default=10.0)
    add("--warmup", type=float, default=0.1, help="share of the leads captured before judging")
    add("--max-growth", type=float, default=20.0, help="percent of unexplained RSS growth allowed")
    add("--kafka-port", type=int, default=int(os.environ.get("LEADFLOW_SOAK_KAFKA_PORT", "27092")))
    add("--port-base", type=int, default=int(os.environ.get("LEADFLOW_SOAK_PORT_BASE", "27000")))
    # Longer than a command's own timeout (15 s), which answers 503: a client that
    # gives up first leaves its command queued and sends another.
    add("--request-timeout", type=float, default=30.0, help="seconds a client waits for one try")
    add("--patience", type=float, default=300.0, help="seconds a client retries one write")
    add("--quiet-seconds", type=float, default=10.0, help="drained: no new records this long")
    add("--drain-timeout", type=float, default=600.0)
    add("--check", action=argparse.BooleanOptionalAction, default=True, help="the outside check at the end")
    # worker_env reads these; the soak runs with the runtime's session timeout and
    # the chart's standby replicas, as the chaos run does.
    parser.set_defaults(session_timeout=None, standby_replicas=None)
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    return args


def code_state() -> dict[str, Any]:
    """Which code ran: HEAD and what differed from it (the working tree may move
    under a long run)."""

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout

    return {
        "head": git("rev-parse", "--short", "HEAD").strip(),
        "changed": git("status", "--porcelain").splitlines(),
    }


def store_name(args: argparse.Namespace) -> str:
    return str(args.store or os.environ.get("LEADFLOW_STORE") or DEFAULT_STORE)


# -- sampling ------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = [pid]
    for parent in found:  # grows as children are found
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                found += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue  # the thread or process ended meanwhile
    return found


@dataclass(frozen=True)
class Usage:
    rss_mib: float  # the worker's and its descendants'
    peak_mib: float  # the worker's own high-water mark (VmHWM)
    cpu_s: float  # the worker's and its descendants', since they started
    children: int


def usage(pid: int) -> Usage:
    """What a worker process and its descendants use; NaN once it is gone."""
    tree = process_tree(pid)
    rss = cpu = 0.0
    peak = math.nan
    for member in tree:
        try:
            memory, cpu_member = memory_mib(member), cpu_seconds(member)
        except OSError:  # ended meanwhile
            if member == pid:
                return Usage(math.nan, math.nan, math.nan, 0)
            continue
        rss, cpu = rss + memory["rss_mib"], cpu + cpu_member
        peak = memory["peak_rss_mib"] if member == pid else peak
    return Usage(round(rss, 1), peak, round(cpu, 2), len(tree) - 1)


def disk_mib(path: Path) -> tuple[float, float]:
    """MiB under `path`, and in RocksDB's write-ahead logs there (what its write
    buffers hold and have not flushed to table files yet)."""
    total = wal = 0
    for file in path.rglob("*"):
        try:
            size = file.stat().st_size if file.is_file() else 0
        except OSError:
            continue  # RocksDB compacted it away meanwhile
        total += size
        wal += size if WAL.fullmatch(file.name) else 0
    return round(total / 2**20, 1), round(wal / 2**20, 1)


def records_in(metrics: str, name: str) -> int:
    return int(
        sum(s.value for f in text_string_to_metric_families(metrics) for s in f.samples if s.name == name)
    )


@dataclass(frozen=True)
class Scrape:
    records: int | None  # None if the scrape failed
    store_mib: float | None
    seconds: float


@dataclass
class Sample:
    """One look at the system; per-worker figures are keyed by worker name."""

    at_s: float  # since the load started; the idle sample is at 0
    phase: str  # idle, load, drain or end
    captured: int  # acknowledged captures so far
    closed: int  # acknowledged closes so far
    # The machine's 1-minute load average: other processes slow the run down.
    load1: float = field(default_factory=lambda: os.getloadavg()[0])
    rss_mib: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)
    # Records in the worker's main table (leads, deals or orders); None if the scrape failed.
    records: dict[str, int | None] = field(default_factory=dict)
    scrape_s: dict[str, float] = field(default_factory=dict)
    disk_mib: dict[str, float] = field(default_factory=dict)
    wal_mib: dict[str, float] = field(default_factory=dict)
    # What the RocksDB stores held in memory (write buffers, block cache, index
    # readers), as the worker reports it; None if the scrape failed.
    store_mib: dict[str, float | None] = field(default_factory=dict)
    # The most they held so far, which RSS keeps (a flushed buffer's memory stays
    # with the allocator and serves the next ones).
    store_peak_mib: dict[str, float] = field(default_factory=dict)

    def total(self, service: str) -> int:
        return sum(n or 0 for w, n in self.records.items() if w.startswith(f"{service}-"))


@dataclass
class Sampler:
    http: httpx.AsyncClient
    workers: list[SupervisedWorker]
    truth: Truth
    samples: list[Sample] = field(default_factory=list)
    phase: str = "idle"
    origin: float = field(default_factory=time.monotonic)

    async def sample(self) -> Sample:
        at = 0.0 if self.phase == "idle" else time.monotonic() - self.origin
        taken = Sample(round(at, 1), self.phase, len(self.truth.captured), len(self.truth.closed))
        scrapes = await asyncio.gather(*(self._scrape(w) for w in self.workers))
        for worker, scrape in zip(self.workers, scrapes, strict=True):
            used = usage(worker.pid)
            taken.rss_mib[worker.name], taken.peak_mib[worker.name] = used.rss_mib, used.peak_mib
            taken.cpu_s[worker.name], taken.children[worker.name] = used.cpu_s, used.children
            taken.records[worker.name], taken.scrape_s[worker.name] = scrape.records, round(scrape.seconds, 3)
            disk = await asyncio.to_thread(disk_mib, Path(worker.env["LEADFLOW_DATA_DIR"]))
            taken.disk_mib[worker.name], taken.wal_mib[worker.name] = disk
            taken.store_mib[worker.name] = scrape.store_mib
            before = self.samples[-1].store_peak_mib.get(worker.name, 0.0) if self.samples else 0.0
            taken.store_peak_mib[worker.name] = max(before, scrape.store_mib or 0.0)
        self.samples.append(taken)
        return taken

    async def _scrape(self, worker: SupervisedWorker) -> Scrape:
        started = time.monotonic()
        try:
            response = await self.http.get(f"{worker.url}/metrics", timeout=SCRAPE_TIMEOUT)
            response.raise_for_status()
        except httpx.HTTPError:
            return Scrape(None, None, time.monotonic() - started)
        store_mib = round(records_in(response.text, STORE_MEMORY) / 2**20, 1)
        return Scrape(
            records_in(response.text, RECORDS[worker.service]), store_mib, time.monotonic() - started
        )

    async def every(self, seconds: float) -> None:
        """A sample every `seconds` and a line on the console, until cancelled."""
        while True:
            await asyncio.sleep(seconds - (time.monotonic() - self.origin) % seconds)
            taken = await self.sample()
            rss = " ".join(f"{w}={mib:.0f}" for w, mib in taken.rss_mib.items())
            console.log(
                f"sample {taken.at_s:5.0f}s: orders {taken.total('orders')}, RSS MiB {rss}, "
                f"scrape s {max(taken.scrape_s.values()):.2f} (slowest)"
            )


# -- verdict -------------------------------------------------------------------


def warmup_end(samples: list[Sample], leads: int, share: float, min_seconds: float) -> Sample | None:
    """The last sample of the warm-up: the first one under load after `share` of the
    leads were captured and at least `min_seconds` of load."""
    return next(
        (s for s in samples if s.phase == "load" and s.captured >= share * leads and s.at_s >= min_seconds),
        None,
    )


@dataclass(frozen=True)
class Judged:
    worker: str
    rss_idle_mib: float
    rss_warm_mib: float
    rss_end_mib: float
    records_warm: int
    records_end: int
    # Memory above the idle worker per record of its main table.
    kib_per_record_warm: float | None
    kib_per_record_end: float | None
    # The RocksDB stores' memory at its high-water mark (see Sample.store_peak_mib).
    stores_warm_mib: float
    stores_end_mib: float
    growth_pct: float  # RSS at the end over RSS at the end of the warm-up
    unexplained_pct: float  # what the verdict judges (see the module docstring)
    passed: bool


def _kib_per_record(rss: float, idle: float, records: int) -> float | None:
    return (rss - idle) * 1024 / records if records > 0 else None


def judge(
    worker: str, idle: Sample, warm: Sample, end: Sample, *, in_memory: bool, max_growth_pct: float
) -> Judged:
    rss_idle, rss_warm, rss_end = (s.rss_mib[worker] for s in (idle, warm, end))
    records_warm, records_end = warm.records[worker] or 0, end.records[worker] or 0
    per_warm = _kib_per_record(rss_warm, rss_idle, records_warm)
    per_end = _kib_per_record(rss_end, rss_idle, records_end)
    growth = 100 * (rss_end / rss_warm - 1)
    if in_memory and per_warm is not None and per_end is not None and per_warm > 0:
        # The records explain their own cost, which must stay what it was.
        unexplained = 100 * (per_end / per_warm - 1)
    else:
        # On disk, RSS net of what the stores held at most stays flat.
        net_warm = rss_warm - warm.store_peak_mib[worker]
        net_end = rss_end - end.store_peak_mib[worker]
        unexplained = 100 * (net_end / net_warm - 1)
    return Judged(
        worker,
        rss_idle,
        rss_warm,
        rss_end,
        records_warm,
        records_end,
        None if per_warm is None else round(per_warm, 2),
        None if per_end is None else round(per_end, 2),
        warm.store_peak_mib[worker],
        end.store_peak_mib[worker],
        round(growth, 1),
        round(unexplained, 1),
        passed=not math.isnan(unexplained) and unexplained <= max_growth_pct,
    )


# -- output --------------------------------------------------------------------


def cpu_percent(samples: list[Sample], worker: str) -> list[float]:
    """The worker's CPU use between each sample and the one before."""
    return [
        100 * (s.cpu_s[worker] - before.cpu_s[worker]) / (s.at_s - before.at_s)
        if s.at_s > before.at_s
        else math.nan
        for before, s in itertools.pairwise(samples)
    ]


def plot(path: Path, samples: list[Sample], warm: Sample | None, load_end_s: float, title: str) -> None:
    figure = Figure(figsize=(11, 13), layout="constrained")
    rss_axes, records_axes, cost_axes, cpu_axes = figure.subplots(4, 1, sharex=True)
    minutes = [s.at_s / 60 for s in samples]
    for worker in samples[0].rss_mib:
        idle = samples[0].rss_mib[worker]
        records = [math.nan if s.records.get(worker) is None else s.records[worker] for s in samples]
        cost = [_kib_per_record(s.rss_mib[worker], idle, s.records.get(worker) or 0) for s in samples]
        line = rss_axes.plot(minutes, [s.rss_mib[worker] for s in samples], marker=".", label=worker)[0]
        stores = [s.store_mib.get(worker) for s in samples]
        if any(stores):  # RocksDB's own memory, within the RSS
            rss_axes.plot(
                minutes, [math.nan if v is None else v for v in stores], color=line.get_color(), ls="--"
            )
        records_axes.plot(minutes, records, marker=".", label=worker)
        cost_axes.plot(minutes, [math.nan if c is None else c for c in cost], marker=".", label=worker)
        cpu_axes.plot(minutes[1:], cpu_percent(samples, worker), marker=".", label=worker)
    records_axes.plot(minutes, [s.captured for s in samples], "k--", label="captured (acked)")
    records_axes.plot(minutes, [s.closed for s in samples], "k:", label="closed (acked)")
    disk_mib = [sum(s.disk_mib.values()) for s in samples]
    if max(disk_mib) >= 1:  # the tables on disk (RocksDB)
        disk = records_axes.twinx()
        disk.plot(minutes, disk_mib, color="grey", alpha=0.6)
        disk.plot(minutes, [sum(s.wal_mib.values()) for s in samples], color="grey", linestyle=":")
        disk.set_ylabel("on disk, MiB (grey; dotted: write-ahead logs)")
    rss_axes.set_ylabel("RSS, MiB (dashed: RocksDB's memory within it)")
    records_axes.set_ylabel("records in the main table")
    cost_axes.set_ylabel("KiB above idle per record")
    load_axes = cpu_axes.twinx()
    load_axes.plot(minutes, [s.load1 for s in samples], color="black", linestyle=":")
    load_axes.set_ylabel("machine load average, 1 min (dotted)")
    cpu_axes.set_ylabel("CPU, % of one core")
    cpu_axes.set_xlabel("minutes since the load started")
    for axes in (rss_axes, records_axes, cost_axes, cpu_axes):
        if warm is not None:
            axes.axvline(warm.at_s / 60, color="green", linestyle="--", linewidth=1)
        axes.axvline(load_end_s / 60, color="red", linestyle="--", linewidth=1)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
    rss_axes.set_title(f"{title}\n(green: end of warm-up, red: end of load)")
    figure.savefig(path, dpi=100)


def render(judged: list[Judged], samples: list[Sample]) -> None:
    table = Table(title="Soak: memory per worker (warm = end of the warm-up)")
    columns = ["worker", "RSS idle", "RSS warm", "RSS end", "records warm", "records end"]
    columns += ["KiB/record warm", "KiB/record end", "RocksDB MiB (peak)", "growth", "unexplained", "verdict"]
    for column in columns:
        table.add_column(column)
    for j in judged:
        per = [f"{v:.2f}" if v is not None else "-" for v in (j.kib_per_record_warm, j.kib_per_record_end)]
        table.add_row(
            j.worker,
            *(f"{v:.0f}" for v in (j.rss_idle_mib, j.rss_warm_mib, j.rss_end_mib)),
            str(j.records_warm),
            str(j.records_end),
            *per,
            f"{j.stores_warm_mib:.0f} → {j.stores_end_mib:.0f}",
            f"{j.growth_pct:+.1f}%",
            f"{j.unexplained_pct:+.1f}%",
            "[green]pass[/green]" if j.passed else "[red]fail[/red]",
        )
    console.print(table)
    slowest = max(samples, key=lambda s: max(s.scrape_s.values(), default=0))
    console.print(
        f"slowest /metrics scrape: {max(slowest.scrape_s.values()):.2f}s at {slowest.at_s:.0f}s; "
        f"data on disk at the end: {sum(samples[-1].disk_mib.values()):.0f} MiB"
    )


# -- the run -------------------------------------------------------------------


@dataclass
class Outcome:
    measured_from: float  # monotonic time of the idle sample
    samples: list[Sample]
    warm: Sample | None
    load_s: float
    drain: Drain
    verdict: Verdict | None
    problems: list[str]
    retries: dict[str, int]
    waits: dict[str, dict[str, float]]


async def drive(
    args: argparse.Namespace, supervisor: Supervisor, broker: RunBroker, issuer: LocalIssuer
) -> Outcome:
    urls = {s: [w.url for w in supervisor.of(s)] for s in SERVICES}
    # Captures and closes each have `clients` clients, and the sampler one per worker.
    limits = httpx.Limits(max_connections=2 * args.clients + len(supervisor.workers) + 8)
    # The API routes take the run issuer's token (/metrics, which the sampler reads, is open).
    auth = issuer.auth(subject="soak-load")
    async with httpx.AsyncClient(timeout=args.request_timeout, limits=limits, auth=auth) as http:
        client = Client(http, urls, args.patience, random.Random(args.seed))
        campaign = await client.create("marketing", "/campaigns", campaign_body(args.seed))
        truth = Truth(campaign_id=campaign["campaign_id"])
        sampler = Sampler(http, supervisor.workers, truth)
        measured_from = time.monotonic()
        await sampler.sample()
        leads = plan_leads(args.leads, args.seed, args.won_share)
        load = Load(client, leads, args.rate, args.clients, truth, console, backlog=args.backlog)
        console.log(
            f"load: {args.leads} leads at {args.rate}/s at most, {args.backlog} open at most, "
            f"{args.clients} captures and {args.clients} closes in flight at most"
        )
        sampler.phase, sampler.origin = "load", time.monotonic()
        sampling = asyncio.create_task(sampler.every(args.sample_seconds))
        await load.run(sampler.origin)
        load_s = time.monotonic() - sampler.origin
        sampler.phase = "drain"
        console.log(f"load done in {load_s:.0f}s ({args.leads / load_s:.0f} leads/s); waiting for the drain")
        drain = await asyncio.to_thread(
            wait_drained, broker.bootstrap, quiet=args.quiet_seconds, timeout=args.drain_timeout
        )
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling  # raises what broke the sampling, if anything did
        sampler.phase = "end"
        await sampler.sample()
        verdict = None
        if args.check:
            console.log(f"drained: {drain.drained} after {drain.seconds:.0f}s; checking from outside")
            # Reading every record takes about a minute per 100,000 leads.
            records = await asyncio.to_thread(read_records, broker.bootstrap, 120 + args.leads / 500)
            verdict = check(truth, await observe(client, truth, records))
    warm = warmup_end(sampler.samples, args.leads, args.warmup, WARMUP_MIN_SECONDS)
    return Outcome(
        measured_from,
        sampler.samples,
        warm,
        load_s,
        drain,
        verdict,
        load.problems,
        dict(client.retries),
        report.waits_summary(load.waits),
    )


def summary_line(store: str, end: Sample, outcome: Outcome, judged: list[Judged], passed: bool) -> str:
    """The last line: RSS summed over the workers, from the end of the warm-up to the end."""
    rss_warm = sum(j.rss_warm_mib for j in judged)
    rss_end = sum(j.rss_end_mib for j in judged)
    worst = max(judged, key=lambda j: j.unexplained_pct, default=None)
    verdict = outcome.verdict
    figures = {
        "leads": end.captured,
        "orders": end.total("orders"),
        "store": store,
        "minutes": f"{outcome.load_s / 60:.1f}",
        "rate": f"{end.captured / outcome.load_s:.0f}/s",
        "rss_start_mib": f"{rss_warm:.0f}",
        "rss_end_mib": f"{rss_end:.0f}",
        "growth": f"{100 * (rss_end / rss_warm - 1):+.1f}%" if rss_warm else "-",
        "unexplained": f"{worst.unexplained_pct:+.1f}%({worst.worker})" if worst else "-",
        "lost": "-" if verdict is None else verdict.lost_leads + verdict.lost_orders,
        "dup": "-" if verdict is None else verdict.dup_leads + verdict.dup_orders,
        "verdict": "pass" if passed else "fail",
    }
    return "soak: " + " ".join(f"{name}={value}" for name, value in figures.items())


def conclude(
    args: argparse.Namespace, outcome: Outcome, crashes: Iterable[str], code: dict[str, Any], out: Path
) -> tuple[str, bool]:
    """The report, the plot and the last line; whether the run passed."""
    samples, warm = outcome.samples, outcome.warm
    store = store_name(args)
    failures = [f"worker {name} crashed (restarted by the supervisor)" for name in crashes]
    failures += [f"{len(outcome.problems)} writes not acknowledged"] if outcome.problems else []
    judged: list[Judged] = []
    if warm is None:
        failures.append("the load never got past the warm-up (too few leads or samples)")
    else:
        judged = [
            judge(
                w,
                samples[0],
                warm,
                samples[-1],
                in_memory=store.startswith("memory"),
                max_growth_pct=args.max_growth,
            )
            for w in samples[0].rss_mib
        ]
        render(judged, samples)
        failures += [
            f"{j.worker}: RSS grew {j.unexplained_pct:+.1f}% unexplained" for j in judged if not j.passed
        ]
    if outcome.verdict is not None:
        report.render_check(console, outcome.verdict, outcome.drain, outcome.problems)
        failures += [] if outcome.verdict.ok else ["the outside check failed: " + outcome.verdict.line(0)]
    for failure in failures:
        console.print(f"[red]{failure}[/red]")
    passed = not failures
    plot(out.with_suffix(".png"), samples, warm, outcome.load_s, f"soak: {args.leads} leads, store {store}")
    line = summary_line(store, samples[-1], outcome, judged, passed)
    report.write_json(
        out.with_suffix(".json"),
        {
            "passed": passed,
            "line": line,
            "arguments": vars(args),
            "store": store,
            "code": code,
            "machine": machine(),
            "load_seconds": outcome.load_s,
            "warmup_end_s": None if warm is None else warm.at_s,
            "judged": [asdict(j) for j in judged],
            "failures": failures,
            "check": None if outcome.verdict is None else asdict(outcome.verdict),
            "waits": outcome.waits,
            "retries": outcome.retries,
            "problems": outcome.problems[:100],
            "samples": [asdict(s) for s in samples],
        },
    )
    console.print(f"report: {out.with_suffix('.json')}, plot: {out.with_suffix('.png')}")
    return line, passed


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    interrupt_on_sigterm()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    label = f"{store_name(args).split(':')[0]}-{stamp}"
    run_dir = SOAK_DIR / f"run-{label}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    broker = RunBroker(args.kafka_port, SOAK_DIR / f"kafka-{args.kafka_port}")
    issuer = run_issuer(run_dir)

    workers = []
    for service in SERVICES:
        for index in range(args.workers):
            name, port = f"{service}-{index}", web_port(args.port_base, service, index)
            # The chaos suite's environment, with the data in this run's directory.
            env = {
                **worker_env(args, broker, name, port, issuer),
                "LEADFLOW_DATA_DIR": str(run_dir / "data" / name),
            }
            workers.append(SupervisedWorker(service, port, env, index=index, run_dir=run_dir))
    if busy := busy_ports([w.port for w in workers] + [args.kafka_port]):
        console.print(f"[red]ports in use: {busy}; choose another --port-base or --kafka-port[/red]")
        return 2
    console.log(
        f"soak, seed {args.seed}, store {store_name(args)}: broker on {broker.bootstrap}, logs in {run_dir}"
    )
    code = code_state()
    broker.fresh()
    supervisor = Supervisor(workers, args.seed)
    try:
        supervisor.start()
        if supervisor.wait_all_ready() is None:
            console.print(f"[red]the workers did not all get ready; see {run_dir}[/red]")
            return 1
        outcome = asyncio.run(drive(args, supervisor, broker, issuer))
    except NotAcknowledged as unanswered:  # the check's own reads, after the load
        console.print(f"[red]could not read what the system shows: {unanswered}[/red]")
        return 1
    finally:
        supervisor.shutdown()
        broker.run("stop")
    # A worker that crashed while starting (a port taken meanwhile) was restarted
    # before the first sample.
    crashes = []
    for name, restart in supervisor.crashes:
        if (restart.exited_at or 0) >= outcome.measured_from:
            crashes.append(name)
        else:
            console.print(f"{name} crashed while starting and was restarted before the first sample")
    line, passed = conclude(args, outcome, crashes, code, SOAK_DIR / f"soak-{label}")
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
