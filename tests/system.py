"""The real system for integration and end-to-end tests: a Kafka broker of its
own (port 19092, data in .cache/kafka-test-19092, wiped per session) and the
services as real worker processes, each on its own port."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas.access import LocalIssuer

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
# Several test sessions may run side by side (each its own broker and ports):
# LEADFLOW_TEST_KAFKA_PORT and LEADFLOW_TEST_PORT_BASE keep them apart.
TEST_KAFKA_PORT = int(os.environ.get("LEADFLOW_TEST_KAFKA_PORT", "19092"))
PORT_BASE = int(os.environ.get("LEADFLOW_TEST_PORT_BASE", "18000"))
BOOTSTRAP = f"127.0.0.1:{TEST_KAFKA_PORT}"
RUN_DIR = ROOT / ".cache" / f"test-run-{TEST_KAFKA_PORT}"
# The services trust this stand-in issuer; `api` calls them with a token holding every scope.
ISSUER = LocalIssuer(ROOT / ".cache" / "issuer-tests")
api = httpx.Client(auth=ISSUER.auth(subject="tests"), timeout=30)


class Broker:
    env = {
        **os.environ,
        "LEADFLOW_KAFKA_HOME": str(ROOT / ".cache" / f"kafka-test-{TEST_KAFKA_PORT}"),
        "KAFKA_PORT": str(TEST_KAFKA_PORT),
    }

    def run(self, command: str) -> None:
        subprocess.run([str(KAFKA_SH), command], env=self.env, check=True)

    def fresh(self) -> None:
        self.run("reset")
        self.run("start")


@dataclass
class Worker:
    """One worker process of a service."""

    service: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return RUN_DIR / f"{self.service}-{self.port}.log"

    def start(self) -> "Worker":
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "LEADFLOW_WEB_PORT": str(self.port),
            "LEADFLOW_DATA_DIR": str(RUN_DIR / "data" / str(self.port)),
            "LEADFLOW_LOG_FORMAT": "text",
            # Stable across restarts of this worker, as a StatefulSet pod's name is.
            "LEADFLOW_INSTANCE_ID": f"{self.service}-{self.port}",
            **ISSUER.service_env(),
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 90.0) -> "Worker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.service} exited: see {self.log_path}\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.service} on {self.port} not ready: see {self.log_path}\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; return that, or fail with the last error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (AssertionError, httpx.HTTPError, KeyError, IndexError) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"not true within {timeout}s; last: {last!r}")


def post(url: str, body: Any, *, attempts: int = 20) -> httpx.Response:
    """POST as a client is told to: again after a 503 (partitions moving), once
    `Retry-After` has passed."""
    for _ in range(attempts):
        answer = api.post(url, json=body, timeout=30)
        if answer.status_code != 503:
            return answer
        time.sleep(float(answer.headers.get("retry-after", "1")))
    return answer


def list_all(url: str, params: dict[str, str] | None = None, **options: Any) -> list[dict[str, Any]]:
    """Every item of a paged list endpoint, following its cursor; `options` go to httpx."""
    items: list[dict[str, Any]] = []
    query = {**(params or {}), "limit": "1000"}
    while True:
        response = api.get(url, params=query, timeout=30, **options)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


def unique_email(name: str = "lead", domain: str = "acme-industries.com") -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}@{domain}"


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: Any
    headers: dict[str, bytes]


def read_topic(topic: str, *, timeout: float = 5.0) -> list[Record]:
    """Every record of `topic` from the beginning, decoded as JSON where it is."""
    return [_record(m) for m in raw_records(topic, timeout=timeout)]


def raw_records(topic: str, *, bootstrap: str = BOOTSTRAP, timeout: float = 5.0) -> list[Any]:
    """Every record of `topic` from the beginning, as kafka-python gives them."""
    # CRCs are checked by the broker; in pure Python they cost seconds on big topics.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, check_crcs=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _record(message: Any) -> Record:
    try:
        value = json.loads(message.value)
    except (TypeError, ValueError):
        value = message.value
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key.decode() if message.key is not None else None,
        value=value,
        headers=dict(message.headers or []),
    )


def produce(topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    try:
        producer.send(topic, key=key.encode(), value=value, headers=headers or []).get(timeout=10)
    finally:
        producer.close()


def records_for(topic: str, lead_id: str) -> Iterator[Record]:
    return (r for r in read_topic(topic) if r.key == lead_id)
