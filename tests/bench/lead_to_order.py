"""`make bench` (part): capture throughput, open-loop latency and worker memory.

Starts a broker of its own (port 19992, fresh data) and one worker per service,
then measures:
- capture throughput: POST /leads at a fixed concurrency (closed loop: each
  client sends its next lead when the last is answered), leads per second on
  one marketing worker;
- open-loop latency: leads sent on a schedule (`--rate` per second), whether or
  not earlier ones were answered, so a slow system is not excused by sending
  less (no coordinated omission). Each lead's clock starts at its scheduled
  time: to `POST /leads` answered, to its `lead.qualified` on the broker, to its
  deal opened in sales. Then closes on the same schedule: `POST .../close`
  answered, and from `deal.closed` to `order.created` on the broker;
- memory: resident set size of each worker after the run.
Broker times are the records' own timestamps (the producers' clocks: this
machine). Results go to .cache/bench/results.json under "lead_to_order".
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

os.environ.setdefault("LEADFLOW_TEST_KAFKA_PORT", "19992")
os.environ.setdefault("LEADFLOW_TEST_PORT_BASE", "18900")

from tests.bench.results import ISSUER, machine, memory_mib, save  # after the env defaults above
from tests.system import PORT_BASE, Broker, Worker, raw_records

console = Console()
# Every client here calls API routes: with a token of the bench's issuer, which the workers trust.
AUTH = ISSUER.auth(subject="bench-lead-to-order")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
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


CLOSE_WON = {"outcome": "won", "lines": [{"sku": "LF-CORE", "quantity": 1}]}


async def capture_throughput(base: str, run: str, count: int, concurrency: int) -> dict[str, Any]:
    """Closed loop: `concurrency` clients, each sending its next lead when answered."""
    latencies: list[float] = []
    numbers = iter(range(count))

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in numbers:
            started = time.perf_counter()
            response = await client.post(f"{base}/leads", json=lead_body(run, i))
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=30, auth=AUTH) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"leads_per_second": count / elapsed, "concurrency": concurrency, "latency": summary(latencies)}


async def open_loop(
    count: int, rate: float, send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
) -> tuple[dict[int, float], dict[int, float], dict[int, httpx.Response], float]:
    """Call `send(client, i)` for i in range(count), the i-th at start + i/rate, not
    waiting for answers. Returns each call's scheduled wall time, its answer's
    wall time, the answers, and the rate actually offered."""
    scheduled: dict[int, float] = {}
    answered: dict[int, float] = {}
    responses: dict[int, httpx.Response] = {}
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    # No pool timeout: a request waiting for a connection is late, and counted so.
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, pool=None), limits=limits, auth=AUTH) as client:

        async def one(i: int) -> None:
            response = await send(client, i)
            answered[i] = time.time()
            responses[i] = response

        start = time.monotonic() + 0.2
        wall = time.time() + 0.2
        tasks = []
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            scheduled[i] = wall + i / rate
            tasks.append(asyncio.create_task(one(i)))
        offered = count / max(time.monotonic() - start, 1e-9)
        await asyncio.gather(*tasks)
    for i, response in responses.items():
        if response.status_code >= 300:
            raise RuntimeError(f"bench: request {i} answered {response.status_code}: {response.text}")
    return scheduled, answered, responses, offered


def record_times(topic: str) -> dict[str, float]:
    """The first record's broker timestamp (s) per key of `topic`."""
    first: dict[str, float] = {}
    for record in raw_records(topic, timeout=60):
        if record.key is not None:
            first.setdefault(record.key.decode(), record.timestamp / 1000)
    return first


def wait_for(check: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: the system did not catch up")
        time.sleep(0.5)


def deals_by_lead(sales: str) -> dict[str, dict[str, Any]]:
    """Every deal, by lead id: the list's pages, following its cursor."""
    deals: dict[str, dict[str, Any]] = {}
    query = {"limit": "1000"}
    with httpx.Client(timeout=30, auth=AUTH) as client:
        while True:
            response = client.get(f"{sales}/deals", params=query)
            response.raise_for_status()
            page = response.json()
            deals |= {d["lead_id"]: d for d in page["items"]}
            if page["next_cursor"] is None:
                return deals
            query["cursor"] = page["next_cursor"]


def since(start: Mapping[int, float], end: Mapping[int, float | None]) -> list[float]:
    return [end_at - start[i] for i, end_at in end.items() if end_at is not None]


def run(args: argparse.Namespace) -> dict[str, Any]:
    broker = Broker()
    broker.fresh()
    workers = {
        name: Worker(
            name, PORT_BASE + offset, env={**ISSUER.service_env(), "LEADFLOW_LOG_LEVEL": "WARNING"}
        ).start()
        for offset, name in ((1, "marketing"), (2, "sales"), (3, "orders"))
    }
    try:
        for worker in workers.values():
            worker.wait_ready()
        marketing, sales = workers["marketing"].url, workers["sales"].url
        tag = uuid.uuid4().hex[:8]
        # Warm up the path (connections, first fetches) before measuring.
        asyncio.run(capture_throughput(marketing, f"warm{tag}", 50, 4))
        throughput = asyncio.run(capture_throughput(marketing, f"tp{tag}", args.leads, args.concurrency))
        console.print(f"capture, closed loop: {throughput['leads_per_second']:.0f} leads/s")

        count = int(args.rate * args.seconds)

        async def capture(client: httpx.AsyncClient, i: int) -> httpx.Response:
            return await client.post(f"{marketing}/leads", json=lead_body(f"ol{tag}", i))

        sent, answered, responses, offered = asyncio.run(open_loop(count, args.rate, capture))
        leads = {i: r.json()["lead_id"] for i, r in responses.items()}
        wait_for(lambda: len(set(leads.values()) & deals_by_lead(sales).keys()) == count)
        deals = deals_by_lead(sales)
        qualified = record_times("lead.qualified")

        def opened(i: int) -> float:
            return datetime.fromisoformat(deals[leads[i]]["opened_at"]).timestamp()

        def assigned(i: int) -> float | None:
            at = deals[leads[i]]["assigned_at"]
            return datetime.fromisoformat(at).timestamp() if at else None

        async def close(client: httpx.AsyncClient, i: int) -> httpx.Response:
            return await client.post(f"{sales}/deals/deal-{leads[i]}/close", json=CLOSE_WON)

        close_sent, close_answered, _, close_offered = asyncio.run(open_loop(count, args.rate, close))
        wait_for(lambda: len(set(leads.values()) & record_times("order.created").keys()) == count)
        closed, ordered = record_times("deal.closed"), record_times("order.created")
        memory = {name: memory_mib(w.process.pid) for name, w in workers.items() if w.process is not None}
    finally:
        for worker in workers.values():
            worker.stop()
        broker.run("stop")

    ids = range(count)
    return {
        "machine": machine(),
        "capture_throughput": throughput,
        "open_loop": {
            "leads": count,
            "rate_asked": args.rate,
            "rate_offered": offered,
            "capture_answered": summary(since(sent, answered)),
            "capture_to_lead_qualified": summary(since(sent, {i: qualified.get(leads[i]) for i in ids})),
            "capture_to_deal_opened": summary(since(sent, {i: opened(i) for i in ids})),
            "capture_to_deal_assigned": summary(since(sent, {i: assigned(i) for i in ids})),
            "close_rate_offered": close_offered,
            "close_answered": summary(since(close_sent, close_answered)),
            "deal_closed_to_order_created": summary(
                [ordered[leads[i]] - closed[leads[i]] for i in ids if leads[i] in ordered]
            ),
        },
        "worker_memory_mib": memory,
    }


def report(results: dict[str, Any]) -> None:
    throughput, loop = results["capture_throughput"], results["open_loop"]
    table = Table(
        title=f"Open loop: {loop['leads']} leads at {loop['rate_offered']:.0f}/s offered "
        f"(closes at {loop['close_rate_offered']:.0f}/s); ms from each request's scheduled time"
    )
    for column in ("measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for name, figures in loop.items():
        if isinstance(figures, dict) and figures.get("n"):
            cells = (f"{figures[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
            table.add_row(name, str(int(figures["n"])), *cells)
    console.print(table)
    console.print(
        f"capture throughput, 1 marketing worker, concurrency {throughput['concurrency']}: "
        f"{throughput['leads_per_second']:.0f} leads/s; worker memory (MiB): {results['worker_memory_mib']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=3000, help="captures for the throughput run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="open loop: requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="open loop: how long")
    args = parser.parse_args()
    results = run(args)
    report(results)
    console.print(f"written to {save('lead_to_order', results)}")


if __name__ == "__main__":
    main()
