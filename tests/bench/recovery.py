"""Recovery bench: how long a restarted or failed-over orders worker takes to serve.

Issue #17 item 3, "recovery that does not grow with the data". Starts a broker of
its own (port 32092, data in .cache/kafka-bench-recovery-32092, wiped at start and
stopped at the end) and orders workers on ports 32000+, then for each N (leads in
the `orders` table) measures the time from starting a worker process to its
/readyz answering 200, and to its log line "Worker ready", in these cases:

- memory:  `LEADFLOW_STORE=memory://` (the default): every start replays the
  table's changelog (first start, restart after SIGTERM, restart after SIGKILL);
- rocksdb: `LEADFLOW_STORE=rocksdb://` on a kept data dir: the first start builds
  the store from the changelog ("cold"), a restart after SIGTERM ("warm") or
  SIGKILL ("crash") should only catch up;
- failover: two workers with `LEADFLOW_STANDBY_REPLICAS=1` (memory store), one
  SIGKILLed: from the kill until the survivor answers /readyz 200 after the
  rebalance and serves a GET of an order on every partition that moved. The same
  on RocksDB ("failover-rocksdb", each worker a kept data dir of its own) and on
  memory without standbys ("failover-nostandby") show what the standby saves.

The table is filled without pushing deals through the service: a probe worker
makes 3 orders from `deal.closed` records, the changelog records it writes are
the template (key = lead id bytes, value = the order's JSON as Faust writes it,
no headers), and N records of that form are produced straight to the changelog
with kafka-python, whose default partitioner (murmur2 of the key bytes) is the one
the workers use. Before any restart is measured the worker must prove it holds
the data: GET /orders/order-<lead_id> answers 200 for random leads and the
leadflow_orders_in_status gauge sums to N.

Each configuration has an app id (consumer group, changelog) of its own. Worker
logs (text format) are kept in .cache/bench/recovery-32092/logs; phase times are
read from their timestamps. Results: a table, and .cache/bench/recovery.json.

    .venv/bin/python -m tests.bench.recovery [--leads 10000,200000] [--repeats 2] [--quick]
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.partitioner import murmur2
from rich.console import Console
from rich.table import Table

from schemas.envelope import CONTENT_TYPE, new_event
from schemas.events import Company, Contact, Customer, DealClosed, DealLine, Outcome
from services.orders.domain.orders import Order
from tests.bench.results import ISSUER, cpu_seconds, machine, memory_mib
from tests.system import raw_records

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
KAFKA_PORT = int(os.environ.get("LEADFLOW_BENCH_KAFKA_PORT", "32092"))
PORT_BASE = int(os.environ.get("LEADFLOW_BENCH_PORT_BASE", "32000"))
KAFKA_HOME = ROOT / ".cache" / f"kafka-bench-recovery-{KAFKA_PORT}"
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
RUN_DIR = ROOT / ".cache" / "bench" / f"recovery-{KAFKA_PORT}"
OUT = ROOT / ".cache" / "bench" / "recovery.json"
PARTITIONS = 6  # LEADFLOW_TOPIC_PARTITIONS default, which the workers use
LEAD_NAMESPACE = uuid.UUID("6f1b3d2e-2c1a-4d53-9a55-1eadf10eb0b0")
FORWARDED = {"x-leadflow-forwarded": "1"}  # answer locally or 503: an ownership probe
# The bench's bearer token on the order reads (API routes); /readyz and /metrics are open.
AUTH = ISSUER.auth(subject="bench-recovery")

console = Console() if sys.stdout.isatty() else Console(width=170)


class WorkerFailed(RuntimeError):
    """A worker exited or did not get ready; carries what its log says."""

    def __init__(self, message: str, log_path: Path) -> None:
        super().__init__(f"{message} (log: {log_path.relative_to(ROOT)})\n{error_lines(log_path)}")
        self.log_path = log_path


# -- broker ----------------------------------------------------------------------


def broker(command: str) -> None:
    env = {**os.environ, "LEADFLOW_KAFKA_HOME": str(KAFKA_HOME), "KAFKA_PORT": str(KAFKA_PORT)}
    subprocess.run([str(KAFKA_SH), command], env=env, check=True)


# -- worker processes ----------------------------------------------------------------

LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+)\s+([\w.]+): (.*)$")
# Log lines that mark the phases of a start, in order (the first line marks the
# end of imports and settings: the process's first output is the topic check).
MARKERS = {
    "worker_starting": "[^Worker]: Starting...",
    "assigned": "Executing _on_partitions_assigned",
    "restoring": "Restoring state from changelog topics...",
    "restored": "Done reading from changelog topics",
    "recovery_complete": "Recovery complete",
    "seek": "Seek stream partitions to committed offsets.",
    "worker_ready": "Worker ready",
}


def log_lines(path: Path) -> Iterator[tuple[float, str, str]]:
    """(wall time, level, "logger: message") of each timestamped line of a worker log."""
    if not path.exists():
        return
    with path.open(errors="replace") as lines:
        for line in lines:
            match = LINE.match(line)
            if match:
                at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
                yield at, match[2], f"{match[3]}: {match[4]}"


def error_lines(path: Path, limit: int = 15) -> str:
    """The worker log's errors and tracebacks (else its tail), for a report."""
    if not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    picked: list[str] = []
    in_traceback = False
    for line in text:
        if line.startswith("Traceback") or " ERROR " in line or " CRITICAL " in line:
            in_traceback = line.startswith("Traceback")
            picked.append(line)
        elif in_traceback:
            picked.append(line)
            in_traceback = not LINE.match(line)
    return "\n".join((picked or text)[-limit:])


def phases(path: Path, since: float) -> dict[str, float]:
    """Seconds from `since` to each marker: the first line and the first "Worker ready"
    after `since`, the other markers their last occurrence before that ready."""
    found: dict[str, float] = {}
    for at, _, message in log_lines(path):
        if at < since - 0.001:
            continue
        found.setdefault("first_log", at - since)
        for name, text in MARKERS.items():
            if text in message:
                found[name] = at - since
        if "worker_ready" in found:
            break
    return {k: round(v, 3) for k, v in found.items()}


def breakdown(marks: dict[str, float], ready: float | None = None) -> dict[str, float]:
    """Durations of the phases of one start, from its markers."""
    spans = {
        "imports": (None, "first_log"),
        "topics": ("first_log", "worker_starting"),
        "join": ("worker_starting", "assigned"),
        "offsets": ("assigned", "restoring"),
        "replay": ("restoring", "restored"),
        "to_seek": ("restored", "seek") if "restored" in marks else ("assigned", "seek"),
        "seek_to_ready": ("seek", "worker_ready"),
    }
    out: dict[str, float] = {}
    for name, (start, end) in spans.items():
        if end in marks and (start is None or start in marks):
            out[name] = round(marks[end] - (marks[start] if start else 0.0), 3)
    if ready is not None and "worker_ready" in marks:
        out["readyz_after_log"] = round(ready - marks["worker_ready"], 3)
    return out


def du_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


_starts = 0


@dataclass
class Worker:
    """One orders worker process; each start writes a log of its own."""

    label: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default=Path())
    started_at: float = 0.0  # wall clock, to compare with log timestamps
    ready_cpu_s: float = 0.0  # CPU time the process had used when /readyz first answered 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, what: str) -> "Worker":
        global _starts
        _starts += 1
        self.log_path = RUN_DIR / "logs" / f"{_starts:03d}-{self.label}-{what}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "LEADFLOW_WEB_PORT": str(self.port),
            "LEADFLOW_LOG_FORMAT": "text",
            "LEADFLOW_LOG_LEVEL": "INFO",
            # Stable across restarts, as a StatefulSet pod's name is (static membership).
            "LEADFLOW_INSTANCE_ID": f"{self.label}-{self.port}",
            # Workers refuse to start without a token issuer: the bench's own.
            **ISSUER.service_env(),
            **self.env,
        }
        with self.log_path.open("wb") as log:
            self.started_at = time.time()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.orders"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float) -> float:
        """Seconds from the start until /readyz answered 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise WorkerFailed(
                    f"{self.label} exited with {self.process and self.process.poll()}", self.log_path
                )
            if self.ready():
                self.ready_cpu_s = cpu_seconds(self.pid)
                return time.time() - self.started_at
            time.sleep(0.1)
        raise WorkerFailed(f"{self.label} not ready within {timeout:.0f}s", self.log_path)

    def logged_ready(self, since: float, timeout: float = 15.0) -> dict[str, float]:
        """The phase markers of the start (or rebalance) from `since`, once "Worker ready" is logged."""
        deadline = time.monotonic() + timeout
        while True:
            marks = phases(self.log_path, since)
            if "worker_ready" in marks or time.monotonic() > deadline:
                return marks
            time.sleep(0.1)

    def measure_start(self, what: str, timeout: float) -> dict[str, Any]:
        self.start(what)
        ready = self.wait_ready(timeout)
        marks = self.logged_ready(self.started_at)
        return {
            "ready_s": round(ready, 3),
            "worker_ready_s": marks.get("worker_ready"),
            "cpu_s": round(self.ready_cpu_s, 2),
            "rss_at_ready_mib": memory_mib(self.pid)["rss_mib"],
            "loadavg_1m": os.getloadavg()[0],
            "marks": marks,
            "phases": breakdown(marks, ready),
            "log": str(self.log_path.relative_to(ROOT)),
        }

    def terminate(self, timeout: float = 90.0) -> float:
        """SIGTERM and wait: seconds the shutdown took."""
        if not self.alive():
            return 0.0
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]{self.label} did not stop in {timeout:.0f}s after SIGTERM; killing")
            self.process.kill()
            self.process.wait()
        return round(time.monotonic() - started, 3)

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def wait_quiet(self, timeout: float, idle_cpu: float = 0.05, quiet_for: int = 3) -> float:
        """Until the worker has used under `idle_cpu` CPU seconds a second for `quiet_for`
        seconds running (standbys caught up, nothing left to read): seconds it took."""
        started = time.monotonic()
        last, calm = cpu_seconds(self.pid), 0
        while calm < quiet_for:
            if time.monotonic() - started > timeout:
                raise WorkerFailed(f"{self.label} still busy after {timeout:.0f}s", self.log_path)
            time.sleep(1.0)
            now = cpu_seconds(self.pid)
            calm = calm + 1 if now - last < idle_cpu else 0
            last = now
        return round(time.monotonic() - started - quiet_for, 1)


# -- the data ------------------------------------------------------------------------


def lead_ids(count: int) -> list[str]:
    return [str(uuid.uuid5(LEAD_NAMESPACE, f"bench-lead-{i}")) for i in range(count)]


def partition_of(key: bytes) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def deal_closed(lead_id: str) -> bytes:
    """A won deal as sales publishes it (as in the orders integration tests)."""
    now = datetime.now(UTC)
    data = DealClosed(
        deal_id=f"deal-{lead_id}",
        lead_id=lead_id,
        campaign_id=None,
        outcome=Outcome.WON,
        lost_reason=None,
        owner="rep-bench",
        customer=Customer(
            company=Company(name="Acme Freight", industry="logistics", size=800, country="DE"),
            contact=Contact(email="ana.ruiz@acme-freight.de", name="Ana Ruiz", title="CTO"),
        ),
        lines=[
            DealLine(sku="LF-CORE", name="Leadflow Core", quantity=1, unit_price=Decimal("12000.00")),
            DealLine(sku="LF-SEAT", name="Seat", quantity=5, unit_price=Decimal("480.00")),
        ],
        amount=Decimal("14400.00"),
        currency="EUR",
        opened_at=now - timedelta(days=3),
        first_contact_at=now - timedelta(days=2),
        closed_at=now,
    )
    return new_event(data, source="/leadflow/sales", subject=lead_id).to_json()


def changelog(app_id: str) -> str:
    return f"{app_id}-orders-changelog"


def read_all(topic: str, timeout: float = 30.0) -> list[Any]:
    return raw_records(topic, bootstrap=BOOTSTRAP, timeout=timeout)


@dataclass
class Template:
    """A changelog record a real worker wrote, to make N more of."""

    lead_id: str
    value: bytes
    partition: int
    headers: list[tuple[str, bytes]]

    def value_for(self, lead_id: str) -> bytes:
        return self.value.replace(self.lead_id.encode(), lead_id.encode())


def probe_format() -> tuple[Template, dict[str, Any]]:
    """Let a real worker make 3 orders from deal.closed and return the changelog
    record it finally wrote for one of them; check its partition is murmur2's."""
    app_id = "leadflow-orders-bench-probe"
    worker = Worker(
        "probe", PORT_BASE, {"LEADFLOW_APP_ID": app_id, "LEADFLOW_DATA_DIR": str(RUN_DIR / "data")}
    )
    worker.start("probe")
    try:
        worker.wait_ready(180)
        probes = [str(uuid.uuid4()) for _ in range(3)]
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
        try:
            for lead_id in probes:
                producer.send(
                    "deal.closed",
                    key=lead_id.encode(),
                    value=deal_closed(lead_id),
                    headers=[("content-type", CONTENT_TYPE.encode())],
                ).get(timeout=10)
        finally:
            producer.close()
        deadline = time.monotonic() + 90
        while True:
            records = [r for r in read_all(changelog(app_id)) if r.key and r.key.decode() in probes]
            final = {r.key.decode(): r for r in records}
            if len(final) == len(probes):
                break
            if time.monotonic() > deadline or not worker.alive():
                raise WorkerFailed("the probe worker made no orders", worker.log_path)
            time.sleep(0.5)
    finally:
        worker.terminate()
    for lead_id, record in final.items():
        if record.partition != partition_of(lead_id.encode()):
            raise AssertionError(
                f"Faust wrote {lead_id} to partition {record.partition}, murmur2 says otherwise"
            )
    record = final[probes[0]]
    template = Template(probes[0], record.value, record.partition, list(record.headers or []))
    # The values must be orders, with the lead id only where the template has it.
    other = str(uuid.uuid4())
    copy = Order.model_validate_json(template.value_for(other))
    if (copy.lead_id, copy.order_id, copy.deal_id) != (other, f"order-{other}", f"deal-{other}"):
        raise AssertionError(f"the template does not carry the lead id where expected: {copy}")
    # The probe's deals must not reach the measured workers (their groups read from the start).
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        tps = [TopicPartition("deal.closed", p) for p in consumer.partitions_for_topic("deal.closed") or []]
        admin.delete_records({tp: offset for tp, offset in consumer.end_offsets(tps).items() if offset})
    finally:
        consumer.close()
        admin.close()
    info = {
        "records_per_order": sum(1 for r in records if r.key == record.key),
        "key": "lead id, utf-8 bytes",
        "headers": template.headers,
        "partitioner": "murmur2(key) % partitions (checked on the probe's records)",
        "value_bytes": len(template.value),
        "value_example": json.loads(template.value),
        "log": str(worker.log_path.relative_to(ROOT)),
    }
    return template, info


def create_topics(app_id: str) -> None:
    env = {
        **os.environ,
        **ISSUER.service_env(),
        "LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "LEADFLOW_APP_ID": app_id,
        "LEADFLOW_LOG_LEVEL": "WARNING",
    }
    subprocess.run([sys.executable, "-m", "services.orders", "topics"], cwd=ROOT, env=env, check=True)


def fill(app_id: str, template: Template, leads: list[str]) -> float:
    """Produce one changelog record per lead, as the worker writes them: seconds it took."""
    started = time.monotonic()
    topic = changelog(app_id)
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=20, batch_size=512 * 1024)
    try:
        for lead_id in leads:
            producer.send(
                topic, key=lead_id.encode(), value=template.value_for(lead_id), headers=template.headers
            )
        producer.flush(timeout=300)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        total = sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()
    if total != len(leads):
        raise AssertionError(f"{topic} has {total} records, expected {len(leads)}")
    return round(time.monotonic() - started, 2)


# -- checks ----------------------------------------------------------------------------


def in_status(worker: Worker) -> float:
    text = httpx.get(f"{worker.url}/metrics", timeout=60).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("leadflow_orders_in_status{")
    )


def verify(workers: list[Worker], leads: list[str], samples: int = 5) -> dict[str, Any]:
    """The workers hold the data: random orders answer 200 (through any worker) and
    orders by status, summed over the workers, is every lead."""
    for lead_id in random.sample(leads, samples):
        worker = random.choice(workers)
        answer = httpx.get(f"{worker.url}/orders/order-{lead_id}", auth=AUTH, timeout=30)
        if answer.status_code != 200 or answer.json()["lead_id"] != lead_id:
            raise AssertionError(
                f"GET order-{lead_id} on {worker.label}: {answer.status_code} {answer.text[:300]}"
            )
    total = sum(in_status(w) for w in workers)
    if total != len(leads):
        raise AssertionError(f"leadflow_orders_in_status sums to {total}, expected {len(leads)}")
    return {"sampled_gets": samples, "in_status_sum": total}


def local_status(worker: Worker, lead_id: str) -> int:
    """What `worker` itself answers for the lead's order (a request marked forwarded is
    not passed on: 503 when another worker owns the key), 0 for no answer."""
    try:
        url = f"{worker.url}/orders/order-{lead_id}"
        return httpx.get(url, headers=FORWARDED, auth=AUTH, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def owns(worker: Worker, lead_id: str) -> bool:
    return local_status(worker, lead_id) == 200


def one_lead_per_partition(leads: list[str]) -> dict[int, str]:
    picked: dict[int, str] = {}
    for lead_id in leads:
        picked.setdefault(partition_of(lead_id.encode()), lead_id)
        if len(picked) == PARTITIONS:
            break
    return picked


# -- the scenarios ------------------------------------------------------------------


@dataclass
class Bench:
    template: Template
    repeats: int
    results: list[dict[str, Any]] = field(default_factory=list)
    fills: dict[str, float] = field(default_factory=dict)

    def ready_timeout(self, n: int) -> float:
        return 180 + n / 400

    def prepare(self, n: int, config: str, leads: list[str]) -> str:
        app_id = f"leadflow-orders-bench-{n}-{config}"
        create_topics(app_id)
        self.fills[app_id] = fill(app_id, self.template, leads)
        console.print(f"  {n} changelog records produced to {changelog(app_id)} in {self.fills[app_id]:.1f}s")
        return app_id

    def record(self, n: int, store: str, scenario: str, runs: list[dict[str, Any]], **extra: Any) -> None:
        row: dict[str, Any] = {"n": n, "store": store, "scenario": scenario, "runs": runs, **extra}
        for key in ("ready_s", "worker_ready_s", "served_s", "detected_s", "cpu_s"):
            values = [r[key] for r in runs if r.get(key) is not None]
            if values:
                row[f"median_{key}"] = round(statistics.median(values), 3)
        replays = [n / r["phases"]["replay"] for r in runs if r.get("phases", {}).get("replay")]
        if replays and not scenario.startswith("failover"):
            row["median_replay_records_per_s"] = round(statistics.median(replays))
        names = {name for r in runs for name in r.get("phases", {})}
        row["median_phases"] = {
            name: round(statistics.median(r["phases"][name] for r in runs if name in r.get("phases", {})), 3)
            for name in sorted(names)
        }
        self.results.append(row)
        console.print(
            f"  {store} {scenario}: ready {row.get('median_ready_s', row.get('median_served_s'))}s "
            f"(runs {[r.get('ready_s', r.get('served_s')) for r in runs]})"
        )

    @contextmanager
    def failing(self, n: int, store: str, scenario: str, workers: list[Worker]) -> Iterator[None]:
        """Record a configuration that fails, with what the worker logs say; go on."""
        try:
            yield
        except (WorkerFailed, AssertionError, TimeoutError, httpx.HTTPError, OSError) as error:
            console.print(f"[red]{n} {store} {scenario} failed: {error}")
            logs = {w.label: error_lines(w.log_path, 40) for w in workers if w.log_path != Path()}
            self.results.append(
                {"n": n, "store": store, "scenario": scenario, "error": str(error), "logs": logs}
            )
        finally:
            for worker in workers:
                worker.kill()

    def memory(self, n: int, leads: list[str]) -> None:
        app_id = self.prepare(n, "memory", leads)
        worker = Worker("memory", PORT_BASE + 1, {"LEADFLOW_APP_ID": app_id, "LEADFLOW_STORE": "memory://"})
        timeout = self.ready_timeout(n)
        with self.failing(n, "memory", "restarts", [worker]):
            first = worker.measure_start("first", timeout)
            checked = verify([worker], leads)
            self.record(n, "memory", "first start", [first], verified=checked)
            warm, crash = [], []
            for _ in range(self.repeats):
                worker.terminate()
                warm.append(worker.measure_start("after-sigterm", timeout))
                worker.kill()
                crash.append(worker.measure_start("after-sigkill", timeout))
            verify([worker], leads)
            memory = memory_mib(worker.pid)
            self.record(n, "memory", "restart after SIGTERM", warm, **memory)
            self.record(n, "memory", "restart after SIGKILL", crash, **memory)
            worker.terminate()

    def rocksdb(self, n: int, leads: list[str]) -> None:
        app_id = self.prepare(n, "rocksdb", leads)
        data_dir = RUN_DIR / "data" / f"{n}-rocksdb"
        env = {"LEADFLOW_APP_ID": app_id, "LEADFLOW_STORE": "rocksdb://", "LEADFLOW_DATA_DIR": str(data_dir)}
        worker = Worker("rocksdb", PORT_BASE + 1, env)
        timeout = self.ready_timeout(n)
        checked: dict[str, Any] = {}
        with self.failing(n, "rocksdb", "cold/warm/crash", [worker]):
            cold, warm, crash = [], [], []
            for repeat in range(self.repeats):
                shutil.rmtree(data_dir, ignore_errors=True)
                cold.append(worker.measure_start("cold", timeout))
                if repeat == 0:
                    checked = verify([worker], leads)
                cold[-1]["data_dir_mib"] = du_mib(data_dir)
                cold[-1]["stop_s"] = worker.terminate()
                warm.append(worker.measure_start("warm", timeout))
                worker.kill()
                crash.append(worker.measure_start("after-sigkill", timeout))
                verify([worker], leads)
                if repeat < self.repeats - 1:
                    worker.terminate()
            memory = memory_mib(worker.pid)
            self.record(n, "rocksdb", "cold (build store)", cold, verified=checked)
            self.record(n, "rocksdb", "warm restart (kept dir)", warm, **memory)
            self.record(n, "rocksdb", "restart after SIGKILL", crash, **memory)
            worker.terminate()

    def failover(self, n: int, leads: list[str], *, store: str, standbys: int) -> None:
        config = f"failover-{store}-standby{standbys}"
        app_id = self.prepare(n, config, leads)
        env = {
            "LEADFLOW_APP_ID": app_id,
            "LEADFLOW_STORE": f"{store}://",
            "LEADFLOW_STANDBY_REPLICAS": str(standbys),
        }
        data = RUN_DIR / "data" / f"{n}-{config}"
        # Each worker its own kept data dir, as a StatefulSet pod's volume.
        survivor = Worker(f"{config}-a", PORT_BASE + 1, env | {"LEADFLOW_DATA_DIR": str(data / "a")})
        victim = Worker(f"{config}-b", PORT_BASE + 2, env | {"LEADFLOW_DATA_DIR": str(data / "b")})
        timeout = self.ready_timeout(n)
        scenario = f"failover, standby replicas {standbys}"
        probes = one_lead_per_partition(leads)
        with self.failing(n, store, scenario, [survivor, victim]):
            survivor.start("first")
            survivor.wait_ready(timeout)
            runs: list[dict[str, Any]] = []
            for repeat in range(self.repeats):
                victim.start("join" if repeat == 0 else "rejoin")
                victim.wait_ready(timeout)
                deadline = time.monotonic() + timeout
                while not (survivor.ready() and victim.ready()):  # no rebalance left under way
                    if time.monotonic() > deadline:
                        raise WorkerFailed("the pair did not settle", victim.log_path)
                    time.sleep(0.2)
                quiet = max(survivor.wait_quiet(timeout), victim.wait_quiet(timeout))
                checked = verify([survivor, victim], leads)
                moved = {p: lead for p, lead in probes.items() if owns(victim, lead)}
                kept = {p: lead for p, lead in probes.items() if owns(survivor, lead)}
                if not moved or len(moved) + len(kept) != PARTITIONS:
                    raise AssertionError(
                        f"ownership unclear: victim {sorted(moved)}, survivor {sorted(kept)}"
                    )
                victim_memory = memory_mib(victim.pid)
                run = self.kill_and_wait(survivor, victim, moved, timeout)
                runs.append(
                    run
                    | {
                        "moved_partitions": sorted(moved),
                        "quiet_before_kill_s": quiet,
                        "victim": victim_memory,
                    }
                )
            moved_order = f"{survivor.url}/orders/order-{next(iter(moved.values()))}"
            answer = httpx.get(moved_order, auth=AUTH, timeout=30)
            assert answer.status_code == 200, answer.text
            verify([survivor], leads)
            self.record(n, store, scenario, runs, verified=checked, **memory_mib(survivor.pid))
            survivor.terminate()

    def kill_and_wait(
        self, survivor: Worker, victim: Worker, moved: dict[int, str], timeout: float
    ) -> dict[str, Any]:
        """SIGKILL the victim; seconds until the survivor is ready and answers itself
        for every moved partition."""
        cpu_before = cpu_seconds(survivor.pid)
        killed_at = time.time()
        victim.kill()
        unready_at: float | None = None
        answers: dict[int, int] = {}  # status -> times, of the moved orders' GETs on the survivor
        deadline = time.monotonic() + timeout
        while True:
            now = time.time()
            if not survivor.alive():
                raise WorkerFailed("the survivor exited", survivor.log_path)
            if not survivor.ready():
                unready_at = unready_at or now
            statuses = [local_status(survivor, lead) for lead in moved.values()]
            for status in statuses:
                answers[status] = answers.get(status, 0) + 1
            # Ownership moved (the new assignment is in), then ready: the rebalance is over.
            if all(status == 200 for status in statuses) and survivor.ready():
                served = time.time() - killed_at
                cpu = cpu_seconds(survivor.pid) - cpu_before
                break
            if time.monotonic() > deadline:
                raise WorkerFailed(f"the survivor did not take over within {timeout:.0f}s", survivor.log_path)
            time.sleep(0.1)
        marks = survivor.logged_ready(killed_at)
        return {
            "served_s": round(served, 3),
            "cpu_s": round(cpu, 2),
            "loadavg_1m": os.getloadavg()[0],
            "readyz_503_seen_s": round(unready_at - killed_at, 3) if unready_at else None,
            # 404 here: the survivor owned the key but had not restored it yet.
            "moved_gets_by_status": answers,
            "detected_s": marks.get("assigned"),
            "worker_ready_s": marks.get("worker_ready"),
            "marks": marks,
            "phases": {k: v for k, v in breakdown(marks).items() if k not in ("imports", "topics", "join")},
            "log": str(survivor.log_path.relative_to(ROOT)),
        }


# -- report ------------------------------------------------------------------------------


def seconds(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(results: list[dict[str, Any]]) -> None:
    table = Table(title="Orders worker recovery: seconds from process start (failover: from SIGKILL)")
    columns = (
        "N",
        "store",
        "scenario",
        "runs",
        "/readyz 200",
        '"Worker ready"',
        "CPU s",
        "replay",
        "rec/s",
        "RSS MiB",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("store", "scenario") else "right")
    for row in results:
        if "error" in row:
            table.add_row(f"{row['n']:,}", row["store"], row["scenario"], "-", "[red]failed", *[""] * 5)
            continue
        ready = row.get("median_ready_s", row.get("median_served_s"))
        table.add_row(
            f"{row['n']:,}",
            row["store"],
            row["scenario"],
            str(len(row["runs"])),
            seconds(ready),
            seconds(row.get("median_worker_ready_s")),
            seconds(row.get("median_cpu_s")),
            seconds(row["median_phases"].get("replay")),
            f"{row['median_replay_records_per_s']:,}" if "median_replay_records_per_s" in row else "",
            f"{rss:.0f}" if (rss := row.get("rss_mib", row["runs"][-1].get("rss_at_ready_mib"))) else "",
        )
    console.print(table)
    names = ("imports", "topics", "join", "offsets", "replay", "to_seek", "seek_to_ready", "readyz_after_log")
    detail = Table(title="Where the time goes (median seconds, from worker log timestamps)")
    for column in ("N", "store", "scenario", "detected", *names):
        detail.add_column(column, justify="left" if column in ("store", "scenario") else "right")
    for row in results:
        if "error" not in row:
            p = row["median_phases"]
            detail.add_row(
                f"{row['n']:,}",
                row["store"],
                row["scenario"],
                seconds(row.get("median_detected_s")),
                *(seconds(p.get(name)) for name in names),
            )
    console.print(detail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", default="10000,200000", help="comma-separated table sizes")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each restart measurement")
    parser.add_argument("--quick", action="store_true", help="one run each, no failover without standby")
    parser.add_argument(
        "--only", default="memory,rocksdb,failover,failover-rocksdb,failover-nostandby", help="configurations"
    )
    args = parser.parse_args()
    sizes = [int(n.replace("_", "")) for n in args.leads.split(",")]
    repeats = 1 if args.quick else args.repeats
    configs = args.only.split(",")
    if args.quick and "failover-nostandby" in configs:
        configs.remove("failover-nostandby")

    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    host = machine()
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    broker("reset")
    broker("start")
    bench: Bench | None = None
    template_info: dict[str, Any] = {}
    try:
        console.print("probing the changelog format with a real worker")
        template, template_info = probe_format()
        console.print(f"  one record per table write, {template_info['value_bytes']} bytes, no headers")
        bench = running = Bench(template, repeats)
        steps: dict[str, Callable[[int, list[str]], None]] = {
            "memory": running.memory,
            "rocksdb": running.rocksdb,
            "failover": lambda n, leads: running.failover(n, leads, store="memory", standbys=1),
            "failover-rocksdb": lambda n, leads: running.failover(n, leads, store="rocksdb", standbys=1),
            "failover-nostandby": lambda n, leads: running.failover(n, leads, store="memory", standbys=0),
        }
        for n in sizes:
            leads = lead_ids(n)
            for config in configs:
                console.rule(f"N = {n:,}: {config}")
                steps[config](n, leads)
    finally:
        broker("stop")
        results = bench.results if bench else []
        output = {
            "started_at": started_at,
            "duration_s": round(time.monotonic() - started, 1),
            "command": " ".join([Path(sys.executable).name, "-m", "tests.bench.recovery", *sys.argv[1:]]),
            "machine": host | {"loadavg_end": os.getloadavg()},
            "broker": {"bootstrap": BOOTSTRAP, "home": str(KAFKA_HOME.relative_to(ROOT))},
            "partitions": PARTITIONS,
            "changelog_format": template_info,
            "fill_seconds": bench.fills if bench else {},
            "results": results,
        }
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(output, indent=2, default=str))
    report(results)
    console.print(f"whole bench: {output['duration_s']:.0f}s; written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
