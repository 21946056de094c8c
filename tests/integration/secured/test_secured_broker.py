"""The broker secured for real (`KAFKA_SECURED=1 deploy/local/kafka.sh start`): one
SASL_SSL listener, a SCRAM-SHA-512 user per service and the StandardAuthorizer with
each service's ACLs from the chart's topology table (deploy/local/acls.py).

The three services log in as their own users and take a lead through to an order;
a wrong password is refused at login, and a service writing a topic it does not own
gets an authorization error, not a silent drop. A broker and workers of this
module's own, on LEADFLOW_TEST_KAFKA_PORT + 500 and LEADFLOW_TEST_PORT_BASE + 91..93.
"""

import asyncio
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka.errors
import pytest
from aiokafka.conn import create_conn
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import GroupAuthorizationFailedError, KafkaTimeoutError, TopicAuthorizationFailedError

from schemas import topics
from tests.chaos.supervisor import RunBroker
from tests.deploy.chart import SERVICES as DEPLOYED
from tests.integration.bad_input.journey import SERVICES, lead_to_order, urls_of
from tests.integration.webhooks.receiver import Receiver
from tests.system import PORT_BASE, ROOT, TEST_KAFKA_PORT, Worker, api, eventually

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KAFKA_PORT = TEST_KAFKA_PORT + 500
FIRST_WEB_PORT = PORT_BASE + 91
ACLS_PY = ROOT / "deploy" / "local" / "acls.py"
WEBHOOKS_PORT, RECEIVER_PORT = PORT_BASE + 94, PORT_BASE + 95
RECEIVER_ON_LOOPBACK = {"LEADFLOW_ALLOW_PRIVATE_TARGETS": "true", "LEADFLOW_ALLOW_HTTP_TARGETS": "true"}


class SecuredBroker(RunBroker):
    """kafka.sh's broker in its secured mode, on this module's port and home."""

    def __init__(self, port: int, home: Path) -> None:
        super().__init__(port, home)
        self.env |= {"KAFKA_SECURED": "1", "LEADFLOW_PYTHON": sys.executable}

    @property
    def cafile(self) -> Path:
        return self.home / "secured" / "ca.crt"

    def password(self, user: str) -> str:
        return (self.home / "secured" / "passwords" / user).read_text().strip()

    def client(self, user: str, password: str | None = None) -> dict[str, Any]:
        """kafka-python options to log in as `user` (with its own password unless given)."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.cafile),
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": user,
            "sasl_plain_password": self.password(user) if password is None else password,
        }

    def service_env(self, service: str) -> dict[str, str]:
        user = f"leadflow-{service}"
        return {
            "LEADFLOW_KAFKA_BOOTSTRAP": self.bootstrap,
            "LEADFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "LEADFLOW_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "LEADFLOW_KAFKA_SASL_USERNAME": user,
            "LEADFLOW_KAFKA_SASL_PASSWORD": self.password(user),
            "LEADFLOW_KAFKA_SSL_CAFILE": str(self.cafile),
        }


@dataclass
class System:
    broker: SecuredBroker
    workers: dict[str, Worker]
    # Where each worker's log stood when it started (logs are appended to across runs).
    log_offsets: dict[str, int]

    def log_of(self, service: str) -> str:
        worker = self.workers[service]
        with worker.log_path.open("rb") as log:
            log.seek(self.log_offsets[service])
            return log.read().decode(errors="replace")


@pytest.fixture(scope="module")
def secured() -> Iterator[System]:
    broker = SecuredBroker(KAFKA_PORT, ROOT / ".cache" / f"kafka-secured-{KAFKA_PORT}")
    workers: dict[str, Worker] = {}
    try:
        broker.fresh()
        for i, service in enumerate(SERVICES):
            env = broker.service_env(service)
            if service == "orders":
                # A standby replica makes a stopping worker ask the group whether
                # anyone else is in it (membership.py's admin client), over SASL_SSL.
                env["LEADFLOW_STANDBY_REPLICAS"] = "1"
            workers[service] = Worker(service, FIRST_WEB_PORT + i, env=env)
        # Webhooks too: besides its Faust app, it reads the subscriptions' changelog
        # with a plain consumer of its own (ready only once that has read it all).
        workers["webhooks"] = Worker(
            "webhooks", WEBHOOKS_PORT, env=broker.service_env("webhooks") | RECEIVER_ON_LOOPBACK
        )
        log_offsets = {s: w.log_path.stat().st_size if w.log_path.exists() else 0 for s, w in workers.items()}
        for worker in workers.values():
            worker.start()
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda w: w.wait_ready(timeout=180), workers.values()))
        yield System(broker, workers, log_offsets)
    finally:
        for worker in workers.values():
            worker.stop()
        broker.run("stop")


def admin(broker: SecuredBroker) -> KafkaAdminClient:
    return KafkaAdminClient(**broker.client("admin"), client_id="tests-admin")


def end_offsets(broker: SecuredBroker, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(**broker.client("admin"), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
        return ends
    finally:
        consumer.close()


def test_a_lead_becomes_an_order_with_each_service_logged_in_as_itself(secured: System) -> None:
    lead_id = lead_to_order(urls_of(secured.workers))
    assert lead_id
    for service in SERVICES:
        log = secured.log_of(service)
        assert f"Authenticated as leadflow-{service} via SASL / SCRAM-SHA-512" in log, service
        # An ACL the services lack shows as a retried or logged authorization error.
        for refusal in ("AuthorizationFailed", "AuthenticationFailed", "Authorization failed"):
            assert refusal not in log, f"{service}: {refusal} in {secured.workers[service].log_path}"


def test_webhooks_delivers_signed_events_logged_in_as_itself(secured: System) -> None:
    webhooks = secured.workers["webhooks"]
    receiver = Receiver(RECEIVER_PORT).start()
    try:
        answer = api.post(
            f"{webhooks.url}/subscriptions",
            json={"url": receiver.url, "event_types": ["deal.closed", "order.created"]},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        receiver.secret = answer.json()["secret"]
        lead_to_order(urls_of(secured.workers))
        # The subscription just made and this lead's two events, every one verified.
        eventually(lambda: len(receiver.accepted_ids()) == 2, timeout=60)
        assert all(r.verified is not False for r in receiver.received)
    finally:
        receiver.stop()
    log = secured.log_of("webhooks")
    assert "Authenticated as leadflow-webhooks via SASL / SCRAM-SHA-512" in log
    for refusal in ("AuthorizationFailed", "AuthenticationFailed", "Authorization failed"):
        assert refusal not in log, f"webhooks: {refusal} in {webhooks.log_path}"


def test_the_broker_holds_exactly_the_acls_of_the_table(secured: System) -> None:
    client = admin(secured.broker)
    try:
        everything = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
        present, _ = client.describe_acls(
            ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, everything)
        )
    finally:
        client.close()
    spelled = {"DESCRIBE_CONFIGS": "DescribeConfigs"}
    on_broker = {
        (
            acl.principal.removeprefix("User:"),
            acl.resource_pattern.resource_type.name.lower(),
            acl.resource_pattern.resource_name,
            "prefix" if acl.resource_pattern.pattern_type == ACLResourcePatternType.PREFIXED else "literal",
            spelled.get(acl.operation.name, acl.operation.name.capitalize()),
        )
        for acl in present
        if acl.permission_type == ACLPermissionType.ALLOW and acl.host == "*"
    }
    assert len(on_broker) == len(present), "only ALLOW ACLs for any host"
    printed = subprocess.run(
        [sys.executable, str(ACLS_PY), "print"], capture_output=True, text=True, check=True
    ).stdout
    table = {(a["user"], a["resource"], a["name"], a["pattern"], a["operation"]) for a in json.loads(printed)}
    assert on_broker == table
    # A user for every service deployed (webhooks too, though this module does not
    # run it), nothing for the admin (a super user), no rights on the cluster itself.
    assert {user for user, *_ in on_broker} == {f"leadflow-{s}" for s in DEPLOYED}


def test_a_wrong_password_is_refused_at_login(secured: System) -> None:
    broker = secured.broker
    server_log = broker.home / "logs" / "server.log"
    refused = "invalid credentials with SASL mechanism SCRAM-SHA-512"
    before = server_log.read_text(errors="replace").count(refused)
    # kafka-python retries its bootstrap until the timeout. (Its 3.0.12 transport
    # drops the broker's SaslAuthenticate error when the close follows at once, so
    # it logs either that error or "socket disconnected".) The broker says why.
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(**broker.client("leadflow-marketing", "not-its-password"), bootstrap_timeout_ms=3000)
    assert server_log.read_text(errors="replace").count(refused) > before

    # aiokafka (the services' client) says so at once.
    async def connect(password: str) -> None:
        context = ssl.create_default_context(cafile=str(broker.cafile))
        connection = await create_conn(
            "127.0.0.1",
            broker.port,
            ssl_context=context,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username="leadflow-marketing",
            sasl_plain_password=password,
        )
        connection.close()

    with pytest.raises(aiokafka.errors.SaslAuthenticationFailed):
        asyncio.run(connect("not-its-password"))
    asyncio.run(connect(broker.password("leadflow-marketing")))  # the right one gets in


def test_the_broker_speaks_no_plaintext(secured: System) -> None:
    with pytest.raises(KafkaTimeoutError):
        KafkaAdminClient(bootstrap_servers=secured.broker.bootstrap, bootstrap_timeout_ms=3000)
    config = (secured.broker.home / "server.properties").read_text()
    assert f"listeners=SASL_SSL://127.0.0.1:{KAFKA_PORT},CONTROLLER://" in config
    assert "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT" in config


def test_a_service_writing_a_topic_it_does_not_own_is_refused_not_dropped(secured: System) -> None:
    broker = secured.broker
    before = end_offsets(broker, topics.DEAL_CLOSED)
    producer = KafkaProducer(**broker.client("leadflow-marketing"), max_block_ms=10_000)
    try:
        for topic in (topics.DEAL_CLOSED, topics.ORDER_CREATED, "leadflow-sales-commands"):
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(topic, key=b"lead", value=b"{}").get(timeout=10)
    finally:
        producer.close()
    assert end_offsets(broker, topics.DEAL_CLOSED) == before


def test_a_service_reads_only_what_it_consumes_in_its_own_group(secured: System) -> None:
    broker = secured.broker
    # Another service's group: refused.
    consumer = KafkaConsumer(
        topics.DEAL_CLOSED, **broker.client("leadflow-marketing"), group_id="leadflow-orders"
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=10_000)
    finally:
        consumer.close()
    # Another service's table, and an event topic it does not consume (marketing now
    # reads or writes all five, so sales and order.created): refused.
    # (A client each: kafka-python's metadata remembers the first refusal and times out after.)
    for user, topic in (
        ("leadflow-marketing", "leadflow-sales-deals-changelog"),
        ("leadflow-sales", topics.ORDER_CREATED),
    ):
        consumer = KafkaConsumer(**broker.client(user), enable_auto_commit=False)
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                consumer.end_offsets([TopicPartition(topic, 0)])
        finally:
            consumer.close()


def test_a_stopping_worker_asks_its_group_over_sasl_ssl(secured: System) -> None:
    orders = secured.workers["orders"]
    secured.log_offsets["orders"] = orders.log_path.stat().st_size
    orders.stop()
    assert orders.process is not None
    assert orders.process.returncode == 0, orders.tail()
    # membership.hand_over described the group, logged in as the service.
    log = secured.log_of("orders")
    assert "client_id=leadflow-orders-admin" in log
    assert "Authenticated as leadflow-orders via SASL / SCRAM-SHA-512" in log
    assert "partitions not handed over" not in log
