"""Webhooks' own Kafka readers (the subscriptions' replica and replay) read a topic
from its beginning. Assigning partitions starts a reset to the consumer's default
policy; with "latest", that reset could finish after the seek to the beginning and
leave the reader at the end: a replay found nothing on a fresh topic, and a worker
could start without the subscriptions that exist."""

import asyncio
import uuid

from aiokafka.structs import TopicPartition
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from services.webhooks.kafka import consumer
from services.webhooks.settings import WebhooksSettings
from tests.system import BOOTSTRAP, Broker

PARTITIONS = 6


def fresh_topic_with(values: list[bytes], key: bytes) -> str:
    topic = f"readers-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    try:
        for value in values:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()
    return topic


def test_a_reader_sought_to_the_beginning_reads_what_is_there(broker: Broker) -> None:
    topic = fresh_topic_with([b"one", b"two"], key=b"lead-1")

    async def read() -> list[bytes]:
        reader = consumer(WebhooksSettings(kafka_bootstrap=BOOTSTRAP))
        await reader.start()
        try:
            assigned = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            reader.assign(assigned)
            # As replay did: a request to the broker between assigning and seeking.
            await reader.end_offsets(assigned)
            await reader.seek_to_beginning(*assigned)
            found: list[bytes] = []
            for _ in range(20):
                for records in (await reader.getmany(timeout_ms=500)).values():
                    found += [r.value for r in records if r.value is not None]
                if len(found) >= 2:
                    break
            return found
        finally:
            await reader.stop()

    assert asyncio.run(read()) == [b"one", b"two"]
