"""Creating a service's topics with the Kafka admin client, idempotently.

The broker never auto-creates topics: a topic created on first use gets the
broker's default partition count, and Faust refuses a table whose changelog and
source topic differ in partitions. So each service creates what it reads and
writes, its dead-letter topics and Faust's internal topics before it starts, and
checks that topics that already exist have the partition count it expects.
"""

import logging
import time
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from services.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False


class PartitionMismatch(Exception):
    pass


def admin_client(settings: ServiceSettings, *, timeout_ms: int = 30000) -> KafkaAdminClient:
    options: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "client_id": f"{settings.app_id}-admin",
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": (
                settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
            ),
        }
    # Each on its own, as the workers' SSL context takes them: a client certificate
    # (mutual TLS) also where the brokers' CA is a system one.
    for option, path in (
        ("ssl_cafile", settings.kafka_ssl_cafile),
        ("ssl_certfile", settings.kafka_ssl_certfile),
        ("ssl_keyfile", settings.kafka_ssl_keyfile),
    ):
        if path is not None:
            options[option] = str(path)
    return KafkaAdminClient(**options)


def ensure_topics(
    settings: ServiceSettings, specs: list[TopicSpec], *, ready_timeout: float = 30.0
) -> list[str]:
    """Create the missing topics; return the names created. Raise PartitionMismatch
    when an existing topic has another partition count than configured.

    Returns only once every topic has all its partitions led: a consumer that
    reads metadata while a new topic has none yet keeps "0 partitions" for it,
    and Faust then refuses to write the table whose changelog it is."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        created: list[str] = []
        for spec in specs:
            if spec.name in existing:
                continue
            config = {"cleanup.policy": "compact"} if spec.compacted else {}
            topic = NewTopic(
                spec.name, settings.topic_partitions, settings.topic_replication_factor, topic_configs=config
            )
            try:
                admin.create_topics([topic])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another service created it in the meantime
        _wait_until_led(admin, [spec.name for spec in specs], settings.topic_partitions, ready_timeout)
        if created:
            log.info("created topics", extra={"topics": created})
        return created
    finally:
        admin.close()


def _wait_until_led(admin: KafkaAdminClient, names: list[str], partitions: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        waiting = []
        for described in admin.describe_topics(names):
            led = [p for p in described["partitions"] if p["leader_id"] >= 0]
            count = len(described["partitions"])
            if count and count != partitions:
                raise PartitionMismatch(
                    f"topic {described['name']} has {count} partitions, configured: {partitions}"
                )
            if described["error_code"] or len(led) < partitions:
                waiting.append(described["name"])
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without led partitions after {timeout:.0f}s: {waiting}")
        time.sleep(0.2)
