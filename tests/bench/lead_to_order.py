"""`make bench`: capture throughput, end-to-end latency and worker memory.

Starts a broker of its own (port 19992, fresh data) and one worker per service,
then measures:
- capture: POST /leads at a fixed concurrency: requests per second and latency
  percentiles (each request is a command applied by the owning agent);
- lead to deal: from `lead.qualified` to the deal opened in sales;
- deal to order: from a won close (`deal.closed` time) to `order.created` time;
- memory: resident set size of each worker after the run.
Timings come from the events' own timestamps where possible (one clock, this
machine). Results are printed and written to .cache/bench/results.json.
"""

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

os.environ.setdefault("LEADFLOW_TEST_KAFKA_PORT", "19992")
os.environ.setdefault("LEADFLOW_TEST_PORT_BASE", "18900")

from tests.system import PORT_BASE, ROOT, Broker, Worker, read_topic  # after the env defaults above

console = Console()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1000,
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values) * 1000,
        "mean_ms": statistics.fmean(values) * 1000,
    }


def lead_body(run: str, i: int) -> dict[str, Any]:
    return {
        "channel": "web",
        "contact": {"email": f"bench.{run}.{i}@acme-freight.de", "name": f"Lead {i}", "title": "CTO"},
        "company": {"name": "Acme", "industry": "logistics", "size": 500, "country": "DE"},
        "consent": True,
        "intent": "demo_request",
    }


async def capture(base: str, run: str, count: int, concurrency: int) -> tuple[list[float], float, list[str]]:
    latencies: list[float] = []
    lead_ids: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post(f"{base}/leads", json=lead_body(run, i))
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            lead_ids.append(response.json()["lead_id"])

    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, count / elapsed, lead_ids


async def close_won(sales: str, lead_ids: list[str], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30) as client:

        async def close(lead_id: str) -> None:
            async with semaphore:
                response = await client.post(
                    f"{sales}/deals/deal-{lead_id}/close",
                    json={"outcome": "won", "lines": [{"sku": "LF-CORE", "quantity": 1}]},
                )
                response.raise_for_status()

        await asyncio.gather(*(close(lead_id) for lead_id in lead_ids))


def wait_for(check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: the system did not catch up")
        time.sleep(0.5)


def times_by_lead(topic: str, field: str) -> dict[str, datetime]:
    return {
        r.value["subject"]: datetime.fromisoformat(r.value["data"][field])
        for r in read_topic(topic, timeout=30)
        if isinstance(r.value, dict)
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    broker = Broker()
    broker.fresh()
    workers = {
        name: Worker(name, PORT_BASE + offset, env={"LEADFLOW_LOG_LEVEL": "WARNING"}).start()
        for offset, name in ((1, "marketing"), (2, "sales"), (3, "orders"))
    }
    try:
        for worker in workers.values():
            worker.wait_ready()
        run = uuid.uuid4().hex[:8]
        # Warm up the path (connections, first fetches) before measuring.
        asyncio.run(capture(workers["marketing"].url, f"warm{run}", 20, 4))
        latencies, rate, lead_ids = asyncio.run(
            capture(workers["marketing"].url, run, args.leads, args.concurrency)
        )
        deals_url = f"{workers['sales'].url}/deals"
        wait_for(lambda: len(httpx.get(deals_url, timeout=30).json()["items"]) >= args.leads + 20)
        asyncio.run(close_won(workers["sales"].url, lead_ids, args.concurrency))
        orders_url = f"{workers['orders'].url}/orders"
        wait_for(lambda: len(httpx.get(orders_url, timeout=30).json()["items"]) >= args.leads)

        qualified = times_by_lead("lead.qualified", "qualified_at")
        closed = times_by_lead("deal.closed", "closed_at")
        ordered = times_by_lead("order.created", "created_at")
        deals = {d["lead_id"]: d for d in httpx.get(deals_url, timeout=30).json()["items"]}
        lead_to_deal = [
            (datetime.fromisoformat(deals[lid]["opened_at"]) - qualified[lid]).total_seconds()
            for lid in lead_ids
        ]
        deal_to_order = [(ordered[lid] - closed[lid]).total_seconds() for lid in lead_ids]
        memory = {name: rss_mib(w.process.pid) for name, w in workers.items() if w.process is not None}
    finally:
        for worker in workers.values():
            worker.stop()
        broker.run("stop")

    results = {
        "leads": args.leads,
        "concurrency": args.concurrency,
        "capture_per_second": rate,
        "capture": summary(latencies),
        "lead_qualified_to_deal": summary(lead_to_deal),
        "deal_closed_to_order": summary(deal_to_order),
        "worker_rss_mib": memory,
        "cpus": os.cpu_count(),
    }
    table = Table(title=f"Leadflow bench: {args.leads} leads, concurrency {args.concurrency}")
    for column in ("measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column)
    for name in ("capture", "lead_qualified_to_deal", "deal_closed_to_order"):
        s: dict[str, float] = results[name]
        table.add_row(
            name, str(int(s["n"])), *(f"{s[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        )
    console.print(table)
    console.print(f"capture throughput: {rate:.0f} leads/s; worker memory (RSS, MiB): {memory}")
    out = ROOT / ".cache" / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
