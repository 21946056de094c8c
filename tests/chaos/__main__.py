"""`python -m tests.chaos`: the lead-to-order pipeline under faults.

On a broker of its own and the services as supervised worker processes, clients
capture leads and close their deals at a steady rate while workers are killed,
the broker crashes, a worker freezes and each service is restarted rolling. Once
the pipeline has drained, every acknowledged capture must be exactly one lead and
one deal, and every acknowledged won close exactly one order, with no dead letter.
Exit 0 only then. The last line of the output sums it up; the whole report is in
.cache/chaos/<seed>.json, the workers' logs in .cache/chaos/run-<seed>/. The
workers trust a stand-in token issuer of the run's own (run-<seed>/issuer/), and
the clients call them with its tokens.
"""

import argparse
import asyncio
import os
import random
import shutil
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from schemas.access import LocalIssuer
from tests.chaos import report
from tests.chaos.check import Truth, check, check_webhooks
from tests.chaos.faults import Injector, crash, plan
from tests.chaos.load import Client, Load, NotAcknowledged, campaign_body, plan_leads
from tests.chaos.observe import Records, observe, read_records, wait_drained
from tests.chaos.probe import PATHS, Probe, assess, topic_partitions
from tests.chaos.supervisor import (
    SERVICES,
    RunBroker,
    SupervisedWorker,
    Supervisor,
    interrupt_on_sigterm,
    web_port,
)
from tests.integration.webhooks.receiver import Receiver
from tests.system import ROOT

console = Console(stderr=True)
if not console.is_terminal:
    console.width = 150  # a log file or CI: no terminal to fit, keep table rows whole


# What the run's webhook subscriber takes, and where its receiver listens.
WEBHOOK_TOPICS = ("deal.closed", "order.created")
RECEIVER_PORT_OFFSET = 90


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--workers", type=int, choices=(1, 2, 3), default=2, help="workers per service")
    add("--leads", type=int, default=20_000)
    add("--seed", type=int, default=None, help="default: a random one, printed")
    add("--won-share", type=float, default=1.0, help="share of deals won; the rest lost")
    add("--rate", type=float, default=20.0, help="captures started per second")
    add("--clients", type=int, default=32, help="leads in flight at most")
    add("--kills", type=int, default=3, help="SIGKILLs per service")
    add("--broker-kill", action=argparse.BooleanOptionalAction, default=True)
    add("--zombie-seconds", type=float, default=20.0, help="SIGSTOP one worker this long; 0: none")
    add("--rolling", action=argparse.BooleanOptionalAction, default=True, help="SIGTERM restarts")
    add("--receiver-outage", type=float, default=20.0, help="webhook receiver down this long; 0: never")
    add("--session-timeout", type=float, default=None, help="LEADFLOW_SESSION_TIMEOUT_SECONDS")
    add("--store", default=None, help="LEADFLOW_STORE, e.g. rocksdb://")
    add(
        "--standby-replicas",
        type=int,
        default=None,
        help="LEADFLOW_STANDBY_REPLICAS (default as the chart: 1, which matters with 2+ workers)",
    )
    add("--kafka-port", type=int, default=int(os.environ.get("LEADFLOW_CHAOS_KAFKA_PORT", "29092")))
    add("--port-base", type=int, default=int(os.environ.get("LEADFLOW_CHAOS_PORT_BASE", "28000")))
    add("--request-timeout", type=float, default=10.0, help="seconds a client waits for one try")
    add("--patience", type=float, default=300.0, help="seconds a client retries one write")
    add("--quiet-seconds", type=float, default=10.0, help="drained: no new records this long")
    add("--drain-timeout", type=float, default=300.0)
    add("--check-targets", action="store_true", help="fail when a fault misses issue #17's targets")
    args = parser.parse_args(argv)
    session = args.session_timeout or 10.0  # the runtime's default
    if 0 < args.zombie_seconds <= session:
        parser.error(f"--zombie-seconds must outlast the session timeout ({session:.0f}s) to make a zombie")
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    return args


def run_issuer(run_dir: Path) -> LocalIssuer:
    """The run's token issuer: its workers trust it, its clients carry its tokens."""
    return LocalIssuer(run_dir / "issuer").ensure_keys()


def worker_env(
    args: argparse.Namespace, broker: RunBroker, name: str, port: int, issuer: LocalIssuer
) -> dict[str, str]:
    run_dir = ROOT / ".cache" / "chaos" / f"run-{args.seed}"
    env = {
        # Every API route takes a bearer token: the workers trust the run's issuer.
        **issuer.service_env(),
        "LEADFLOW_KAFKA_BOOTSTRAP": broker.bootstrap,
        "LEADFLOW_DATA_DIR": str(run_dir / "data" / name),
        # Explicit, so that nothing inherited makes two workers advertise one URL.
        "LEADFLOW_WEB_HOST": "127.0.0.1",
        "LEADFLOW_ADVERTISED_URL": f"http://127.0.0.1:{port}",
        # Stable across restarts, like a StatefulSet pod's name: Kafka static membership.
        "LEADFLOW_INSTANCE_ID": name,
    }
    if args.session_timeout is not None:
        env["LEADFLOW_SESSION_TIMEOUT_SECONDS"] = str(args.session_timeout)
    if args.store is not None:
        env["LEADFLOW_STORE"] = args.store
    if name.startswith("webhooks-"):
        # The run's receiver listens on plain http on 127.0.0.1, and retries come
        # in seconds, not hours, so that what it missed arrives within the run.
        env |= {
            "LEADFLOW_ALLOW_PRIVATE_TARGETS": "true",
            "LEADFLOW_ALLOW_HTTP_TARGETS": "true",
            "LEADFLOW_ATTEMPT_TIMEOUT_SECONDS": "5",
            "LEADFLOW_RETRY_ATTEMPTS": "100",
            "LEADFLOW_RETRY_FIRST_DELAY_SECONDS": "1",
            "LEADFLOW_RETRY_FACTOR": "2",
            "LEADFLOW_RETRY_MAX_DELAY_SECONDS": "5",
        }
    # As deployed: warm copies of the other workers' partitions, which a worker
    # stopped cleanly hands its partitions to (services/runtime/membership.py).
    env["LEADFLOW_STANDBY_REPLICAS"] = str(1 if args.standby_replicas is None else args.standby_replicas)
    return env


def busy_ports(ports: list[int]) -> list[int]:
    busy = []
    for port in ports:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def wait_delivered(receiver: Receiver, expected: set[str], timeout: float) -> Counter[str]:
    """What the receiver accepted, once it holds every `expected` webhook-id or
    `timeout` s have passed (deliveries retried after an outage come last)."""
    deadline = time.monotonic() + timeout
    while True:
        accepted = Counter(r.headers["webhook-id"] for r in receiver.accepted())
        if expected <= set(accepted) or time.monotonic() > deadline:
            return accepted
        time.sleep(1)


async def drive(
    args: argparse.Namespace,
    supervisor: Supervisor,
    broker: RunBroker,
    issuer: LocalIssuer,
    receiver: Receiver,
) -> tuple[dict[str, Any], bool]:
    """Load and faults, then the check; the report and whether the run passed."""
    urls = {s: [w.url for w in supervisor.of(s)] for s in SERVICES}
    # Captures and closes each have `clients` clients; the pool must not make them queue.
    limits = httpx.Limits(max_connections=2 * args.clients + 8)
    auth = issuer.auth(subject="chaos-load")
    async with httpx.AsyncClient(timeout=args.request_timeout, limits=limits, auth=auth) as http:
        client = Client(http, urls, args.patience, random.Random(args.seed))
        campaign = await client.create("marketing", "/campaigns", campaign_body(args.seed))
        truth = Truth(campaign_id=campaign["campaign_id"])
        # A subscriber's system takes the deals closed and the orders made as webhooks.
        subscription = await client.create(
            "webhooks",
            "/subscriptions",
            {"url": receiver.url, "event_types": list(WEBHOOK_TOPICS), "description": f"chaos {args.seed}"},
        )
        receiver.secret = subscription["secret"]
        leads = plan_leads(args.leads, args.seed, args.won_share)
        load = Load(client, leads, args.rate, args.clients, truth, console)
        schedule = plan(
            random.Random(args.seed),
            duration=args.leads / args.rate,
            kills=args.kills,
            broker=args.broker_kill,
            zombie=args.zombie_seconds > 0,
            rolling=args.rolling,
            receiver=args.receiver_outage > 0,
        )
        load_running = threading.Event()
        # Every service with a keyed read; webhooks has none (its state is per subscription).
        probed = {s: u for s, u in urls.items() if s in PATHS}
        probe = Probe(probed, topic_partitions(), args.seed, auth=issuer.auth(subject="chaos-probe"))
        injector = Injector(
            supervisor,
            broker,
            schedule,
            random.Random(args.seed + 1),
            args.zombie_seconds,
            load_running,
            receiver=receiver,
            receiver_outage=args.receiver_outage,
        )
        planned = ", ".join(f"{p.kind} {p.service or ''} at {p.at:.0f}s" for p in schedule)
        console.log(f"load: {args.leads} leads at {args.rate}/s; faults: {planned}")
        console.log(f"probe: {probe.partitions} partitions a service, keys {', '.join(probe.keys)}")
        origin = time.monotonic()
        probe.start()
        try:
            load_running.set()
            injector.start(origin)
            await load.run(origin)
            load_running.clear()
            load_ended = time.monotonic()
            console.log("load done; waiting for the last faults")
            await asyncio.to_thread(injector.join)
            console.log("waiting for the pipeline to drain")
            drain = await asyncio.to_thread(
                wait_drained, broker.bootstrap, quiet=args.quiet_seconds, timeout=args.drain_timeout
            )
        finally:
            await asyncio.to_thread(probe.stop)
        records: Records = await asyncio.to_thread(read_records, broker.bootstrap)
        verdict = check(truth, await observe(client, truth, records))
    expected = {e.event_id for e in records.events if e.topic in WEBHOOK_TOPICS and e.event_id is not None}
    console.log(f"waiting for the receiver to hold the {len(expected)} events subscribed to")
    accepted = await asyncio.to_thread(wait_delivered, receiver, expected, args.drain_timeout)
    unverified = sum(1 for r in receiver.received if r.verified is False)
    webhooks = check_webhooks(records.events, accepted, unverified, WEBHOOK_TOPICS)

    crashes = [
        crash(name, restart, under_load=(restart.exited_at or 0) <= load_ended)
        for name, restart in supervisor.crashes
    ]
    injected = injector.faults
    faults = sorted([*injected, *crashes], key=lambda f: f.at)
    assess(faults, probe.samples)
    probe_summary = probe.summary(origin)
    report.render(
        console,
        verdict=verdict,
        faults=faults,
        origin=origin,
        waits=load.waits,
        retries=client.retries,
        drain=drain,
        problems=load.problems,
        probe=probe_summary,
    )
    console.print(
        f"webhooks: {webhooks.delivered} of {webhooks.expected} events delivered; {webhooks.line()}"
    )
    missed = [f for f in injected if f.missed_target]
    failures = list(verdict.failures)
    failures += [f"webhooks: {what}: {len(ids)}, e.g. {ids[:3]}" for what, ids in webhooks.findings.items()]
    if webhooks.unverified:
        failures.append(f"webhooks: {webhooks.unverified} deliveries did not verify")
    if load.problems:
        failures.append(f"{len(load.problems)} writes not acknowledged")
    if injector.error is not None:
        failures.append(f"fault injector failed: {injector.error!r}")
    if probe.error is not None:
        failures.append(f"partition probe failed: {probe.error!r}")
    if args.check_targets and missed:
        failures.append(f"{len(missed)} faults missed their target")
    passed = verdict.ok and webhooks.ok and not failures
    result = {
        "passed": passed,
        "line": f"{verdict.line(len(injected))} {webhooks.line()}",
        "arguments": vars(args),
        "verdict": verdict.__dict__,
        "webhooks": webhooks.__dict__,
        "failures": failures,
        "faults": report.fault_rows(injected, origin),
        "crashes": report.fault_rows(crashes, origin),
        "missed_targets": len(missed),
        "probe": probe_summary,
        "waits": report.waits_summary(load.waits),
        "retries": dict(client.retries),
        "problems": load.problems,
        "drain": drain.__dict__,
        "dead_letter_samples": records.dead_letter_samples,
        "log_excerpts": report.log_excerpts(supervisor.workers[0].run_dir, verdict),
    }
    for failure in failures[len(verdict.failures) :]:
        console.print(f"[red]{failure}[/red]")
    return result, passed


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    interrupt_on_sigterm()
    run_dir = ROOT / ".cache" / "chaos" / f"run-{args.seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    broker = RunBroker(args.kafka_port, ROOT / ".cache" / f"kafka-chaos-{args.kafka_port}")
    issuer = run_issuer(run_dir)
    workers = []
    for service in SERVICES:
        for index in range(args.workers):
            name, port = f"{service}-{index}", web_port(args.port_base, service, index)
            env = worker_env(args, broker, name, port, issuer)
            workers.append(SupervisedWorker(service, port, env, index=index, run_dir=run_dir))
    if busy := busy_ports([*(w.port for w in workers), args.port_base + RECEIVER_PORT_OFFSET]):
        console.print(f"[red]ports in use: {busy}; choose another --port-base[/red]")
        return 2
    console.log(f"chaos run, seed {args.seed}: broker on {broker.bootstrap}, logs in {run_dir}")
    broker.fresh()
    supervisor = Supervisor(workers, args.seed)
    receiver = Receiver(args.port_base + RECEIVER_PORT_OFFSET).start()
    try:
        supervisor.start()
        if supervisor.wait_all_ready() is None:
            console.print(f"[red]the workers did not all get ready; see {run_dir}[/red]")
            return 1
        result, passed = asyncio.run(drive(args, supervisor, broker, issuer, receiver))
    except NotAcknowledged as unanswered:  # the check's own reads, after the load
        console.print(f"[red]could not read what the system shows: {unanswered}[/red]")
        return 1
    finally:
        receiver.stop()
        supervisor.shutdown()
        broker.run("stop")
    out = ROOT / ".cache" / "chaos" / f"{args.seed}.json"
    report.write_json(out, result)
    console.print(f"report: {out}")
    print(result["line"], flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
