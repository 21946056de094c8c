"""Plain Kafka consumers of this service's own (outside its consumer group), with the
worker's connection settings: following the subscriptions' changelog, and replay."""

from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context

from services.runtime.settings import ServiceSettings


def consumer(settings: ServiceSettings, **options: Any) -> AIOKafkaConsumer:
    """An unstarted consumer with no group: it is assigned partitions, commits nothing."""
    protocol = settings.kafka_security_protocol
    connection: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "security_protocol": protocol,
        "client_id": f"{settings.app_id}-reader",
        "group_id": None,
        "enable_auto_commit": False,
        # Both readers start from the beginning. Assigning partitions starts a reset
        # to this policy, and it can finish after a `seek_to_beginning` asked for
        # right after: with "latest" a reader then started at the end and found
        # nothing (no subscriptions after a restart, an empty replay).
        "auto_offset_reset": "earliest",
    }
    if protocol in ("SSL", "SASL_SSL"):
        connection["ssl_context"] = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        connection |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return AIOKafkaConsumer(**connection, **options)
