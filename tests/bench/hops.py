"""Stream-hop bench: each service's steady throughput on one hop, side by side with a
bare aiokafka copier on the same broker and the same pre-filled input.

The hops, and the Kafka write that ends each (the last one a record causes):
- orders: `deal.closed` (won) -> `order.created`.
- sales: `lead.qualified` -> deal opened and assigned. Opening a deal writes no
  public event: the worker stores the deal (pending) in its `deals` table, asks
  the assignment desk on `leadflow-sales-assignment-requests`, the desk answers
  on `leadflow-sales-commands` and the command agent stores the deal again,
  assigned. The end is that second write to `leadflow-sales-deals-changelog`, the
  first with `"assignment": "assigned"` (or "queued"). The workers get the default
  roster with room for every deal (capacity = records); with the default
  capacities (250 open deals in all) nearly every deal would wait in a desk's
  queue, which `--worker-env LEADFLOW_REPS_FILE=services/sales/config/reps.yaml`
  measures.
- marketing: `deal.closed` -> the lead closed. The worker stores the won lead in
  its `leads` table and sends nothing else. The end is that write to
  `leadflow-marketing-leads-changelog`, the first for the lead with
  `"status": "won"`. Campaign performance writes nothing: each worker sums its
  own leads in memory as they are written (once a report has asked for them; no
  report does here). The leads come from 12 campaigns. They are in `leads`
  before the worker starts: their records, as the table stores them (qualified),
  are produced to its changelog, which the worker restores; so that changelog
  holds a record per lead before the run, and gets another per record.
The writes before the end are measured too ("stages"), each from the first
record per lead in its topic.

For each worker count (`--workers`, default 1 and 2): a fresh broker of the
bench's own (port 31092, its controller on 31093, home .cache/bench/hops-kafka,
wiped at the end), the services' topics created by the services (`python -m
services.<name> topics`), the changelogs kept from compaction until counted
(min.compaction.lag.ms), and N input records produced once, keyed by lead id, as
the upstream services publish them: CloudEvents built with schemas/ and the
upstream domain code (marketing's capture and qualification, sales' pricing from
the catalogue, so every total adds up). Then for each hop, on that input:
1. the copier (tests/bench/copier.py), one process per worker in one group of its
   own, copying to a scratch topic with as many partitions;
2. the service's workers (ports 31000+, fresh data dirs, its normal app id and
   group, with the chart's defaults: RocksDB store, INFO JSON logs, static
   membership) consume the backlog.
A run ends once the end's topic has a write per record (sales: two deal writes;
marketing: the lead restored, and the lead closed),
and fails on a dead letter, an exited process or 90 s without output.

The rate is records per second between the 10th and 90th percentile of the
output's broker timestamps, so starts do not count; when a worker joining late
moves partitions while the backlog is read, the window starts once every worker
is ready again (copiers start only once their group has settled). The CPU
seconds each process used while consuming hardly depend on other load on the
machine: CPU ms per record is the steadier comparison. RSS (VmRSS) is taken at
the end of each run.

`--profile` attaches py-spy (`--idle`, speedscope format) to the single worker of
each hop while it consumes, writes .cache/bench/profile-<hop>.speedscope.json
(open it in https://www.speedscope.app) and prints where the time goes.
`--worker-env NAME=VALUE` tries a setting (e.g. Faust's PRODUCER_LINGER=0.005).

Results: tables, and the key "hops" of .cache/bench/results.json (other keys
kept), written after every hop.

    .venv/bin/python -m tests.bench.hops [--records 20000] [--hops orders,sales,marketing]
        [--workers 1,2] [--store rocksdb|memory] [--profile] [--worker-env NAME=VALUE ...]
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from rich.table import Table

from schemas import topics
from schemas.envelope import CONTENT_TYPE, new_event, once_id
from schemas.events import Channel, Company, Contact, Intent, Outcome
from services.marketing.domain import leads as lead_flow
from services.marketing.domain.campaigns import Budget, Campaign, Target
from services.marketing.domain.capture import Capture
from services.marketing.domain.identity import lead_id_for
from services.marketing.domain.rules import DEFAULT_RULES_FILE, RuleSet
from services.runtime.settings import ServiceSettings
from services.sales.domain import deals as pipeline
from services.sales.domain.assignment import Roster
from services.sales.domain.catalog import DEFAULT_CATALOG_FILE, Catalog, OrderedLine
from services.sales.settings import DEFAULT_REPS_FILE
from tests.bench.recovery import console, partition_of
from tests.bench.results import ISSUER, RESULTS, cpu_seconds, machine, memory_mib, save
from tests.system import ROOT, Broker, Worker

# Below Linux's ephemeral range (32768+), where an outgoing connection may hold a port.
KAFKA_PORT = 31092
PORT_BASE = 31000
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
KAFKA_HOME = ROOT / ".cache" / "bench" / "hops-kafka"
RUN_DIR = ROOT / ".cache" / "bench" / "hops"
PARTITIONS = 6  # LEADFLOW_TOPIC_PARTITIONS default, which the workers use
CAMPAIGNS_PER_PARTITION = 2
NAMESPACE = ServiceSettings.model_fields["id_namespace"].default  # the deployment's, as the workers have it
HEADERS = [("content-type", CONTENT_TYPE.encode())]
# A won deal's lines, priced from the catalogue by sales' own code.
LINES = [
    OrderedLine(sku="LF-CORE", quantity=1),
    OrderedLine(sku="LF-SEAT", quantity=5, discount_percent=Decimal("10")),
    OrderedLine(sku="LF-ONBOARD", quantity=1),
]
COUNTRIES = ["DE", "AT", "GB", "FR", "NL", "SE", "US", "ES", "CH", "IE"]
STALL_SECONDS = 90.0  # no new output for this long: the run has failed


class HopsBroker(Broker):
    env = {**os.environ, "LEADFLOW_KAFKA_HOME": str(KAFKA_HOME), "KAFKA_PORT": str(KAFKA_PORT)}


# -- the input ---------------------------------------------------------------------


@dataclass(frozen=True)
class Lead:
    """One lead's records, as the services upstream of each hop write them."""

    lead_id: str
    qualified: bytes  # lead.qualified, as marketing publishes it
    closed: bytes  # deal.closed (won), as sales publishes it
    stored: bytes  # the lead in marketing's `leads` table: its JSON, as in the changelog


def campaign_ids() -> list[str]:
    """Campaign ids (uuids, as marketing mints them), CAMPAIGNS_PER_PARTITION on each partition."""
    picked: dict[int, list[str]] = defaultdict(list)
    i = 0
    while len(picked) < PARTITIONS or any(len(ids) < CAMPAIGNS_PER_PARTITION for ids in picked.values()):
        candidate = str(uuid.uuid5(NAMESPACE, f"bench-campaign-{i}"))
        ids = picked[partition_of(candidate.encode())]
        if len(ids) < CAMPAIGNS_PER_PARTITION:
            ids.append(candidate)
        i += 1
    return [c for p in sorted(picked) for c in picked[p]]


def prepare(count: int) -> list[Lead]:
    """`count` leads captured through the campaigns, qualified (hand-raisers), given
    a deal, assigned and won, with the domain code of each service."""
    rules = RuleSet.load(DEFAULT_RULES_FILE)
    catalog = Catalog.load(DEFAULT_CATALOG_FILE)
    roster = Roster.load(DEFAULT_REPS_FILE)
    captured_at = datetime.now(UTC) - timedelta(days=3)
    campaigns = [
        Campaign(
            campaign_id=campaign_id,
            name=f"Bench campaign {n}",
            channel=Channel.WEB,
            budget=Budget(amount=Decimal("25000.00"), currency="EUR"),
            starts_on=captured_at.date() - timedelta(days=30),
            ends_on=captured_at.date() + timedelta(days=30),
            target=Target(industries=["logistics"], countries=["DE"]),
            created_at=captured_at - timedelta(days=30),
        )
        for n, campaign_id in enumerate(campaign_ids())
    ]
    leads = []
    for i in range(count):
        country = COUNTRIES[i % len(COUNTRIES)]
        capture = Capture(
            channel=Channel.WEB,
            campaign_id=campaigns[i % len(campaigns)].campaign_id,
            contact=Contact(email=f"buyer.{i}@freight-{i % 997}.example.com", name=f"Buyer {i}", title="CTO"),
            company=Company(name=f"Freight {i % 997}", industry="logistics", size=800, country=country),
            consent=True,
            intent=Intent.DEMO_REQUEST,
        )
        lead_id = lead_id_for(capture.contact.email, NAMESPACE)
        change = lead_flow.capture(
            None, lead_id, capture, campaigns[i % len(campaigns)], rules, captured_at, str(uuid.uuid4())
        )
        if change.qualified is None:
            raise AssertionError(f"lead {i} did not qualify: {change.lead.status}")
        deal = pipeline.open_deal(change.qualified, captured_at + timedelta(hours=1))
        deal = pipeline.assign(deal, roster.eligible(country)[0].rep_id, deal.opened_at)
        deal = pipeline.record_contact(
            deal, pipeline.ContactChannel.CALL, None, deal.opened_at + timedelta(hours=2)
        )
        _, won = pipeline.close(
            deal,
            Outcome.WON,
            lines=LINES,
            lost_reason=None,
            catalog=catalog,
            now=captured_at + timedelta(days=2),
        )
        qualified = new_event(
            change.qualified,
            source="/leadflow/marketing",
            subject=lead_id,
            at=change.qualified.qualified_at,
            event_id=once_id(NAMESPACE, change.qualified.TYPE, lead_id),
        )
        closed = new_event(
            won,
            source="/leadflow/sales",
            subject=lead_id,
            at=won.closed_at,
            event_id=once_id(NAMESPACE, won.TYPE, won.deal_id),
        )
        stored = change.lead.model_dump_json().encode()
        leads.append(Lead(lead_id, qualified.to_json(), closed.to_json(), stored))
    return leads


Records = Iterable[tuple[str, bytes, list[tuple[str, bytes]]]]  # key, value, headers


def produce(inputs: dict[str, Records]) -> int:
    """Records by topic, keyed by lead id with the default partitioner (murmur2, as the
    workers' producers): how many were produced. aiokafka, for its speed: kafka-python
    takes ten times as long."""

    async def send() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, max_batch_size=512 * 1024)
        await producer.start()
        count = 0
        try:
            for topic, records in inputs.items():
                for key, value, headers in records:
                    await producer.send(topic, value, key=key.encode(), headers=headers)
                    count += 1
            await producer.flush()
        finally:
            await producer.stop()
        return count

    return asyncio.run(send())


# -- the hops --------------------------------------------------------------------------


def _value(record: Any) -> Any:
    return json.loads(record.value)


def _key(record: Any) -> str:
    return str(record.key.decode())


@dataclass(frozen=True)
class Stage:
    """A write the hop makes per record; `unit` names the record's unit of work
    (None: a record of the topic that is not this stage's)."""

    name: str
    topic: str
    unit: Callable[[Any], str | None]


@dataclass(frozen=True)
class Hop:
    name: str  # the service's too
    input_topic: str
    inputs: Callable[[list[Lead]], dict[str, Records]]  # what to produce before the runs, by topic
    stages: tuple[Stage, ...]  # in order; the last one ends the hop
    writes_per_record: int  # records the last stage's topic gets per input record, at least
    env: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> Stage:
        return self.stages[-1]


def _deals_with(*assignments: str) -> Callable[[Any], str | None]:
    return lambda record: _key(record) if _value(record).get("assignment") in assignments else None


def hops(records: int) -> dict[str, Hop]:
    reps = yaml.safe_load(DEFAULT_REPS_FILE.read_text())
    for rep in reps["reps"]:
        rep["capacity"] = records
    roster = RUN_DIR / "reps-with-room.yaml"
    roster.parent.mkdir(parents=True, exist_ok=True)
    roster.write_text(yaml.safe_dump(reps))
    sales_deals = "leadflow-sales-deals-changelog"
    return {
        "orders": Hop(
            "orders",
            topics.DEAL_CLOSED,
            lambda leads: {topics.DEAL_CLOSED: ((lead.lead_id, lead.closed, HEADERS) for lead in leads)},
            (Stage("order.created", topics.ORDER_CREATED, _key),),
            writes_per_record=1,
        ),
        "sales": Hop(
            "sales",
            topics.LEAD_QUALIFIED,
            lambda leads: {
                topics.LEAD_QUALIFIED: ((lead.lead_id, lead.qualified, HEADERS) for lead in leads)
            },
            (
                Stage("deal opened (deals changelog, pending)", sales_deals, _deals_with("pending")),
                Stage("desk decided (commands)", "leadflow-sales-commands", _key),
                # Queued: the desk's answer when no rep has room (only with a roster short of room).
                Stage("deal assigned (deals changelog)", sales_deals, _deals_with("assigned", "queued")),
            ),
            writes_per_record=2,
            env={"LEADFLOW_REPS_FILE": str(roster)},
        ),
        "marketing": Hop(
            "marketing",
            topics.DEAL_CLOSED,
            lambda leads: {
                "leadflow-marketing-leads-changelog": ((lead.lead_id, lead.stored, []) for lead in leads),
                topics.DEAL_CLOSED: ((lead.lead_id, lead.closed, HEADERS) for lead in leads),
            },
            # The leads produced to the changelog above are qualified: not this stage's.
            (
                Stage(
                    "lead closed (leads changelog)",
                    "leadflow-marketing-leads-changelog",
                    lambda record: _key(record) if _value(record)["status"] == "won" else None,
                ),
            ),
            # The changelog's record of each lead produced before the run, and the closed one.
            writes_per_record=2,
        ),
    }


# -- reading outputs -------------------------------------------------------------------


class Topics:
    """End offsets and timestamps of the bench broker's topics."""

    def __init__(self) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, check_crcs=False)
        # Per stage, its records at the last reading: more than units when records were
        # handled again (after a rebalance, say).
        self.writes: dict[str, int] = {}

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, topic: str) -> list[TopicPartition]:
        if not self.consumer.partitions_for_topic(topic):
            self.consumer.topics()  # created since the last metadata update, maybe
        return [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or [])]

    def size(self, *names: str) -> int:
        tps = [tp for name in names for tp in self.partitions(name)]
        return sum(self.consumer.end_offsets(tps).values()) if tps else 0

    def dead_letter_topics(self) -> list[str]:
        return sorted(t for t in self.consumer.topics() if t.endswith(topics.DLQ_SUFFIX))

    def first_times(self, topic: str, stages: list[Stage]) -> dict[str, dict[str, float]]:
        """Per stage of `topic`: the broker timestamp (s) of the first record of each unit."""
        found: dict[str, dict[str, float]] = {stage.name: {} for stage in stages}
        writes = dict.fromkeys(found, 0)
        tps = self.partitions(topic)
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        end = self.consumer.end_offsets(tps)
        deadline = time.monotonic() + 300
        while any(self.consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for batch in self.consumer.poll(timeout_ms=500).values():
                for record in batch:
                    for stage in stages:
                        unit = stage.unit(record)
                        if unit is not None:
                            found[stage.name].setdefault(unit, record.timestamp / 1000)
                            writes[stage.name] += 1
        self.consumer.unsubscribe()
        self.writes |= writes
        return found

    def stage_times(self, stages: tuple[Stage, ...]) -> dict[str, dict[str, float]]:
        """first_times of every stage, each topic read once, in the order of `stages`."""
        by_topic: dict[str, list[Stage]] = defaultdict(list)
        for stage in stages:
            by_topic[stage.topic].append(stage)
        found = {
            name: t for topic, group in by_topic.items() for name, t in self.first_times(topic, group).items()
        }
        return {stage.name: found[stage.name] for stage in stages}


def rate(times: list[float], settled_at: float) -> dict[str, Any]:
    """Units per second between the 10th and 90th percentile timestamps, from
    `settled_at` on if that is later (a rebalance under way before it)."""
    ordered = sorted(times)
    if len(ordered) < 10:
        return {"units": len(ordered), "rate": None}
    p10, p90 = ordered[len(ordered) // 10], ordered[(len(ordered) - 1) * 9 // 10]
    start = max(p10, settled_at)
    inside = sum(1 for t in ordered if start <= t <= p90)
    return {
        "units": len(ordered),
        "rate": round(inside / (p90 - start), 1) if p90 > start else None,
        "window_s": round(p90 - start, 2),
        "window_units": inside,
        "first_to_last_s": round(ordered[-1] - ordered[0], 2),
        "settled_after_first_s": round(max(0.0, settled_at - ordered[0]), 2),
        # Seconds from the first output to each tenth of them: a steady run rises evenly.
        "deciles_s": [round(ordered[(len(ordered) - 1) * q // 10] - ordered[0], 2) for q in range(1, 11)],
    }


# -- the processes ---------------------------------------------------------------------


@dataclass
class HopWorker(Worker):
    """A service worker (tests.system.Worker) on the bench broker, with a log of its own."""

    log: Path = field(default=Path())
    data_dir: Path = field(default=Path())

    @property
    def log_path(self) -> Path:
        return self.log

    def start(self) -> "HopWorker":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)  # RocksDB of an earlier run: not this broker's
        env = {
            **os.environ,
            "LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "LEADFLOW_WEB_PORT": str(self.port),
            "LEADFLOW_DATA_DIR": str(self.data_dir),
            "LEADFLOW_INSTANCE_ID": f"{self.service}-{self.port}",
            # Workers refuse to start without a token issuer; the bench calls no API route.
            **ISSUER.service_env(),
            **self.env,
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def assigned(self) -> bool | None:
        """Whether the worker holds its partitions (False: a rebalance is under way);
        None when /readyz does not answer in time, as a busy worker may not."""
        try:
            checks = httpx.get(f"{self.url}/readyz", timeout=2).json()["checks"]
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        return bool(checks["partitions_assigned"] and checks["tables_recovered"])


class Copier:
    """One tests.bench.copier process, started at once."""

    def __init__(self, source: str, target: str, group: str, log: Path) -> None:
        command = [sys.executable, "-m", "tests.bench.copier", "--bootstrap", BOOTSTRAP]
        command += ["--source", source, "--target", target, "--group", group]
        self.log = log
        with log.open("w") as errors:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
            )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout
        os.set_blocking(self.stdout.fileno(), False)
        self.assigned: list[int] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll_assignment(self) -> list[int]:
        """The partitions the group gave this copier last, from its announcements so far."""
        if self.process.poll() is not None:
            raise RuntimeError(f"copier exited with {self.process.returncode}: see {self.log}")
        while line := self.stdout.readline():
            self.assigned = json.loads(line)["assigned"]
        return self.assigned

    def go(self) -> None:
        self.stdin.write("go\n")
        self.stdin.flush()

    def stop(self) -> None:
        self.stdin.close()  # end of input: the copier commits and exits
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def profiler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy on a running worker until SIGINT; idle stacks included, to see waiting."""
    command = [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(pid), "--idle", "--threads"]
    command += ["--format", "speedscope", "--output", str(output)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_profiler(spy: subprocess.Popen[bytes]) -> str:
    spy.send_signal(signal.SIGINT)
    try:
        _, errors = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, errors = spy.communicate()
    return errors.decode(errors="replace")


# -- the runs ------------------------------------------------------------------------


@dataclass
class Bench:
    records: int
    leads: list[Lead]
    env: dict[str, str]  # for every worker, over the hop's own
    profile: bool
    about: dict[str, Any]  # what results.json says of the run besides its results
    broker: HopsBroker = field(default_factory=HopsBroker)
    started: float = field(default_factory=time.monotonic)
    results: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)

    def case(self, chosen: list[Hop], workers: int) -> None:
        """The hops with `workers` processes each, on a fresh broker with their input
        produced once (orders and marketing read the same deal.closed records): per
        hop the copier, then the service."""
        console.rule(f"{workers} worker(s) per hop, {self.records:,} records")
        self.broker.fresh()
        env = {
            **os.environ,
            **ISSUER.service_env(),
            "LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "LEADFLOW_LOG_LEVEL": "WARNING",
        }
        for hop in chosen:
            command = [sys.executable, "-m", f"services.{hop.name}", "topics"]
            subprocess.run(command, cwd=ROOT, env=env, check=True)
        known = Topics()
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        try:
            # Changelogs are compacted: their records must stay until they are counted.
            changelogs = [t for t in known.consumer.topics() if t.endswith("-changelog")]
            admin.alter_configs(
                [
                    ConfigResource(ConfigResourceType.TOPIC, t, {"min.compaction.lag.ms": "86400000"})
                    for t in changelogs
                ]
            )
            inputs: dict[str, Records] = {}
            for hop in chosen:
                for topic, records in hop.inputs(self.leads).items():
                    inputs.setdefault(topic, records)
                admin.create_topics(
                    [NewTopic(f"bench.copy.{hop.name}", len(known.partitions(hop.input_topic)), 1)]
                )
            started = time.monotonic()
            produced = produce(inputs)
            console.print(
                f"{produced:,} records produced to {', '.join(inputs)} in {time.monotonic() - started:.1f}s"
            )
            for hop in chosen:
                self.hop(hop, workers, known)
        finally:
            admin.close()
            known.close()

    def save(self) -> None:
        """Under "hops" in results.json, after every hop: a failure later keeps what was measured."""
        entry = self.about | {
            "duration_s": round(time.monotonic() - self.started, 1),
            "loadavg_end": os.getloadavg(),
            "summary": summary_rows(self.results),
            "runs": self.results,
            "profiles": self.profiles,
        }
        save("hops", entry)

    def hop(self, hop: Hop, workers: int, known: Topics) -> None:
        label = f"{hop.name}-{workers}w"
        copier_stage = Stage("copied", f"bench.copy.{hop.name}", _key)
        copied = self.run_copiers(hop, workers, copier_stage, known, label)
        console.print(f"  {hop.name}: copier   {figure(copied['rate'])} rec/s")
        served = self.run_service(hop, workers, known, label)
        console.print(f"  {hop.name}: leadflow {figure(served['rate'])} rec/s")
        self.results.append(
            {
                "hop": hop.name,
                "workers": workers,
                "records": self.records,
                "partitions": len(known.partitions(hop.input_topic)),
                "input_topic": hop.input_topic,
                "output_topic": hop.output.topic,
                "leadflow": served,
                "copier": copied,
            }
        )
        self.save()

    def run_copiers(self, hop: Hop, workers: int, stage: Stage, known: Topics, label: str) -> dict[str, Any]:
        group = f"bench-copier-{label}"
        logs = RUN_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        copiers = [
            Copier(hop.input_topic, stage.topic, group, logs / f"copier-{label}-{i}.log")
            for i in range(workers)
        ]
        try:
            deadline = time.monotonic() + 120
            while True:  # every copier its share, the group settled: go
                shares = [c.poll_assignment() for c in copiers]
                if all(shares) and sorted(p for share in shares for p in share) == list(
                    range(len(known.partitions(hop.input_topic)))
                ):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the copiers' group did not settle: {shares}")
                time.sleep(0.2)
            for copier in copiers:
                copier.go()
            settled_at, load = time.time(), os.getloadavg()[0]
            cpu_before = [cpu_seconds(c.pid) for c in copiers]
            self.wait_for(known, stage.topic, self.records, copiers)
            memory = [memory_mib(c.pid) for c in copiers]
            cpu = [cpu_seconds(c.pid) - before for c, before in zip(copiers, cpu_before, strict=True)]
        finally:
            for copier in copiers:
                copier.stop()
        times = known.first_times(stage.topic, [stage])[stage.name]
        measured = rate(list(times.values()), settled_at) | {"writes": known.writes[stage.name]}
        if measured["units"] != self.records:
            raise AssertionError(
                f"the copier copied {measured['units']} distinct keys, expected {self.records}"
            )
        return measured | self.usage(cpu, memory, load)

    def run_service(self, hop: Hop, workers: int, known: Topics, label: str) -> dict[str, Any]:
        env = hop.env | self.env
        procs = [
            HopWorker(
                hop.name,
                PORT_BASE + i,
                env=env,
                log=RUN_DIR / "logs" / f"{label}-{i}.log",
                data_dir=RUN_DIR / "data" / f"{label}-{i}",
            )
            for i in range(workers)
        ]
        spy = None
        spy_output = ROOT / ".cache" / "bench" / f"profile-{hop.name}.speedscope.json"
        try:
            for worker in procs:
                worker.start()
            for worker in procs:
                worker.wait_ready(180)
            if self.profile and workers == 1:
                spy = profiler(procs[0].pid, spy_output)
            load, cpu_before = os.getloadavg()[0], [cpu_seconds(w.pid) for w in procs]
            settled_at = self.wait_for(known, hop.output.topic, self.records * hop.writes_per_record, procs)
            if spy is not None:
                errors = stop_profiler(spy)
                spy = None
                self.profiles[hop.name] = summarise(spy_output, errors)
            times = self.complete(hop, known)
            memory = [memory_mib(w.pid) for w in procs]
            cpu = [cpu_seconds(w.pid) - before for w, before in zip(procs, cpu_before, strict=True)]
        finally:
            if spy is not None:
                stop_profiler(spy)
            for worker in procs:
                worker.stop()
        stages = {
            name: rate(list(t.values()), settled_at) | {"writes": known.writes[name]}
            for name, t in times.items()
        }
        return (
            stages[hop.output.name]
            | self.usage(cpu, memory, load)
            | {
                "stages": stages,
                "env": env,
                "profiled": spy_output.name if self.profile and workers == 1 else None,
                "logs": [str(w.log.relative_to(ROOT)) for w in procs],
            }
        )

    def usage(self, cpu: list[float], memory: list[dict[str, float]], load: float) -> dict[str, Any]:
        """CPU seconds each process used from the start of consumption to the end (other
        load on the machine moves it much less than the rates), and its memory at the end."""
        return {
            "cpu_s": [round(c, 2) for c in cpu],
            "cpu_ms_per_record": round(1000 * sum(cpu) / self.records, 3),
            "rss_mib": [m["rss_mib"] for m in memory],
            "peak_rss_mib": [m["peak_rss_mib"] for m in memory],
            "loadavg_1m_at_start": load,
        }

    def wait_for(self, known: Topics, topic: str, writes: int, processes: list[Any]) -> float:
        """Until `topic` has `writes` records; fail on a dead letter, an exited process
        or a stall. Returns when the service's workers among `processes` last came
        out of a rebalance (else when the wait began)."""
        settled_at, rebalancing = time.time(), set()
        last, last_change = -1, time.monotonic()
        dead_letters = known.dead_letter_topics()
        workers = [p for p in processes if isinstance(p, HopWorker)]
        while True:
            for worker in workers:
                assigned = worker.assigned()
                if assigned is False:
                    rebalancing.add(worker.port)
                elif assigned and worker.port in rebalancing:
                    rebalancing.discard(worker.port)
                    settled_at = time.time()
            for process in processes:
                if process.process is None or process.process.poll() is not None:
                    raise RuntimeError(f"{process} exited: {[w.tail(20) for w in workers]}")
            if dead := known.size(*dead_letters):
                raise RuntimeError(f"{dead} dead letters in {dead_letters}: {[w.tail(20) for w in workers]}")
            size = known.size(topic)
            if size >= writes and not rebalancing:
                return settled_at
            if size != last:
                last, last_change = size, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                raise TimeoutError(f"{topic} stuck at {size} of {writes} records")
            time.sleep(0.5)

    def complete(self, hop: Hop, known: Topics) -> dict[str, dict[str, float]]:
        """Every stage's first write per unit, once the last stage has one per input record."""
        deadline = time.monotonic() + STALL_SECONDS
        while True:
            times = known.stage_times(hop.stages)
            done = len(times[hop.output.name])
            if done >= self.records:
                return times
            if time.monotonic() > deadline:
                raise TimeoutError(f"{hop.name}: {done} of {self.records} units at {hop.output.name}")
            time.sleep(2)


# -- profiles ---------------------------------------------------------------------------

# A thread whose innermost frame is one of these waits (its event loop has nothing to run).
IDLE_LEAVES = {"select", "poll", "wait", "_wait_for_tstate_lock", "sleep"}


def short(file: str) -> str:
    """A frame's file as its module path: package-relative, or relative to the repository."""
    for marker in ("site-packages/", f"lib/python{sys.version_info.major}.{sys.version_info.minor}/"):
        if marker in file:
            return file.rsplit(marker, 1)[1]
    return file.removeprefix(str(ROOT) + "/")


def summarise(path: Path, errors: str, top: int = 15) -> dict[str, Any]:
    """Where the sampled threads spent their time: per thread, the share of samples
    waiting (idle), and of the busy ones the top lines by self time and the top
    functions by inclusive time (under them, however deep)."""
    if not path.exists():
        return {"error": errors.strip()[-2000:] or "py-spy wrote nothing"}
    speedscope = json.loads(path.read_text())
    frames = [
        (f["name"], short(str(f.get("file", ""))), f.get("line")) for f in speedscope["shared"]["frames"]
    ]
    threads = []
    for profile in speedscope["profiles"]:
        stacks = [stack for stack in profile["samples"] if stack]
        busy = [stack for stack in stacks if frames[stack[-1]][0].rsplit(".", 1)[-1] not in IDLE_LEAVES]
        if not busy:
            continue
        own = Counter("{} ({}:{})".format(*frames[stack[-1]]) for stack in busy)
        packages = Counter(frames[stack[-1]][1].split("/")[0].removesuffix(".py") for stack in busy)
        inclusive = Counter(
            function for stack in busy for function in {"{} ({})".format(*frames[i][:2]) for i in stack}
        )
        threads.append(
            {
                "thread": profile["name"],
                "samples": len(stacks),
                "busy_percent": round(100 * len(busy) / len(stacks), 1),
                "self_percent_of_busy": [(f, round(100 * n / len(busy), 1)) for f, n in own.most_common(top)],
                "self_by_package_percent_of_busy": [
                    (name, round(100 * n / len(busy), 1)) for name, n in packages.most_common(top)
                ],
                # Frames under nearly every busy sample (the event loop) say nothing.
                "inclusive_percent_of_busy": [
                    (f, round(100 * n / len(busy), 1))
                    for f, n in inclusive.most_common()
                    if n < 0.97 * len(busy)
                ][: top * 2],
            }
        )
    threads.sort(key=lambda t: -t["samples"] * t["busy_percent"])
    return {"file": str(path.relative_to(ROOT)), "threads": threads}


def print_profile(hop: str, summary: dict[str, Any]) -> None:
    if "error" in summary:
        console.print(f"[red]profile of {hop}: {summary['error']}")
        return
    for thread in summary["threads"]:
        if thread["busy_percent"] < 5:
            continue
        table = Table(
            title=f"{hop}: {thread['thread']}: {thread['samples']} samples, {thread['busy_percent']}% busy; "
            "% of busy samples"
        )
        table.add_column("self (line)")
        table.add_column("%", justify="right")
        table.add_column("inclusive (function)")
        table.add_column("%", justify="right")
        own, inclusive = thread["self_percent_of_busy"], thread["inclusive_percent_of_busy"]
        for i in range(max(len(own), len(inclusive))):
            row = [
                *(own[i] if i < len(own) else ("", "")),
                *(inclusive[i] if i < len(inclusive) else ("", "")),
            ]
            table.add_row(*(str(cell) for cell in row))
        console.print(table)
        by_package = ", ".join(
            f"{name} {share}%" for name, share in thread["self_by_package_percent_of_busy"]
        )
        console.print(f"self time by package: {by_package}")
    console.print(f"profile: {summary['file']}")


# -- report --------------------------------------------------------------------------------


def figure(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def summary_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[tuple[str, int], dict[str, Any]] = {(r["hop"], r["workers"]): r for r in results}
    rows = []
    for hop in dict.fromkeys(r["hop"] for r in results):
        one, two = by.get((hop, 1)), by.get((hop, 2))
        lf1 = one["leadflow"]["rate"] if one else None
        cp1 = one["copier"]["rate"] if one else None
        cpu1 = (
            ratio(one["copier"]["cpu_ms_per_record"], one["leadflow"]["cpu_ms_per_record"]) if one else None
        )
        rows.append(
            {
                "hop": hop,
                "records": (one or two or {}).get("records"),
                "leadflow_1w": lf1,
                "copier_1w": cp1,
                "ratio": ratio(lf1, cp1),
                # The same ratio in CPU time per record: steadier on a busy machine.
                "cpu_ratio_1w": cpu1,
                "leadflow_2w": two["leadflow"]["rate"] if two else None,
                "copier_2w": two["copier"]["rate"] if two else None,
                "leadflow_2w_over_1w": ratio(two["leadflow"]["rate"], lf1) if two else None,
                "copier_2w_over_1w": ratio(two["copier"]["rate"], cp1) if two else None,
            }
        )
    return rows


def report(results: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    table = Table(
        title="Stream hops: records/s of output (p10-p90 of broker timestamps); "
        "ratio = leadflow/copier, CPU ratio = copier/leadflow CPU ms per record"
    )
    for column in (
        "hop",
        "records",
        "leadflow 1w rec/s",
        "copier 1w rec/s",
        "ratio",
        "CPU ratio",
        "leadflow 2w/1w",
        "copier 2w/1w",
    ):
        table.add_column(column, justify="left" if column == "hop" else "right")
    for row in rows:
        table.add_row(
            row["hop"],
            figure(row["records"]),
            figure(row["leadflow_1w"]),
            figure(row["copier_1w"]),
            figure(row["ratio"], ".3f"),
            figure(row["cpu_ratio_1w"], ".3f"),
            figure(row["leadflow_2w_over_1w"], ".2f"),
            figure(row["copier_2w_over_1w"], ".2f"),
        )
    console.print(table)
    detail = Table(title="Per run: rate, CPU seconds and RSS at the end, per process")
    columns = (
        "hop",
        "workers",
        "who",
        "rec/s",
        "window s",
        "settled after s",
        "CPU s",
        "CPU ms/rec",
        "RSS MiB",
        "load",
    )
    for column in columns:
        detail.add_column(column, justify="left" if column in ("hop", "who") else "right")
    for result in results:
        for who in ("leadflow", "copier"):
            run = result[who]
            detail.add_row(
                result["hop"],
                str(result["workers"]),
                who,
                figure(run["rate"]),
                figure(run.get("window_s"), ".1f"),
                figure(run.get("settled_after_first_s"), ".1f"),
                " ".join(f"{c:.1f}" for c in run["cpu_s"]),
                f"{run['cpu_ms_per_record']:.2f}",
                " ".join(f"{m:.0f}" for m in run["rss_mib"]),
                f"{run['loadavg_1m_at_start']:.1f}",
            )
    console.print(detail)
    stages = Table(
        title="Leadflow stages per hop: first write per record, rec/s (p10-p90); written: all its writes"
    )
    for column in ("hop", "workers", "stage", "records", "written", "rec/s"):
        stages.add_column(column, justify="left" if column in ("hop", "stage") else "right")
    for result in results:
        for name, stage in result["leadflow"]["stages"].items():
            stages.add_row(
                result["hop"],
                str(result["workers"]),
                name,
                f"{stage['units']:,}",
                f"{stage['writes']:,}",
                figure(stage["rate"]),
            )
    console.print(stages)


def source_state() -> dict[str, Any]:
    """The commit measured, and the files that differ from it: figures depend on both."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    return {"commit": git("rev-parse", "HEAD").strip(), "modified": git("status", "--porcelain").splitlines()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000, help="input records per run")
    parser.add_argument("--hops", default="orders,sales,marketing", help="comma-separated")
    parser.add_argument("--workers", default="1,2", help="worker (and copier) counts, comma-separated")
    parser.add_argument(
        "--store", choices=("rocksdb", "memory"), default="rocksdb", help="the workers' table store"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy on the single worker of each hop")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the workers, to try a setting (e.g. PRODUCER_LINGER=0.005)",
    )
    args = parser.parse_args()
    known = hops(args.records)
    chosen = [known[name] for name in args.hops.split(",")]
    counts = [int(n) for n in args.workers.split(",")]

    env = {"LEADFLOW_STORE": f"{args.store}://", **dict(pair.split("=", 1) for pair in args.worker_env)}
    about = {
        "date": datetime.now(UTC).isoformat(),
        "command": " ".join(["python", "-m", "tests.bench.hops", *sys.argv[1:]]),
        "machine": machine(),
        "source": source_state(),
        "records": args.records,
        "worker_env": env,
    }
    console.print(f"preparing {args.records:,} leads with the services' domain code")
    bench = Bench(args.records, prepare(args.records), env, args.profile, about)
    try:
        for workers in counts:
            bench.case(chosen, workers)
    finally:
        bench.broker.run("reset")  # stopped, and its data (about 1 GB) gone
    report(bench.results, summary_rows(bench.results))
    for name, summary in bench.profiles.items():
        print_profile(name, summary)
    elapsed = time.monotonic() - bench.started
    console.print(f'whole bench: {elapsed:.0f}s; written under "hops" in {RESULTS.relative_to(ROOT)}')


if __name__ == "__main__":
    main()
