"""What every service gets from the runtime, checked on the real broker."""

import uuid

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from tests.system import BOOTSTRAP, Worker, api, eventually, produce, read_topic


def test_each_service_created_its_topics_with_one_partition_count(system: dict[str, Worker]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        expected = [
            "lead.created",
            "lead.qualified",
            "deal.closed",
            "order.created",
            "lead.qualified.dlq",
            "deal.closed.dlq",
            "leadflow-marketing-commands",
            "leadflow-sales-commands.dlq",
            "leadflow-marketing-leads-changelog",
            "leadflow-sales-deals-changelog",
            "leadflow-orders-orders-changelog",
        ]
        described = {t["name"]: t for t in admin.describe_topics(expected)}
        assert {name: len(described[name]["partitions"]) for name in expected} == dict.fromkeys(expected, 6)
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "leadflow-sales-deals-changelog")]
        )
        changelog = configs["topic"]["leadflow-sales-deals-changelog"]
        assert changelog["cleanup.policy"]["value"] == "compact"
    finally:
        admin.close()


def test_a_record_that_cannot_be_processed_goes_to_the_dlq_and_the_worker_goes_on(
    system: dict[str, Worker],
) -> None:
    key = f"garbage-{uuid.uuid4()}"
    produce("lead.qualified", key, b"{not json", headers=[("trace", b"t-1")])

    def dead_letter() -> object:
        return next((r for r in read_topic("lead.qualified.dlq") if r.key == key), None)

    record = eventually(dead_letter)
    assert record.value == b"{not json"
    assert record.headers["dlq.origin.topic"] == b"lead.qualified"
    assert int(record.headers["dlq.origin.offset"]) >= 0
    assert record.headers["dlq.failed.by"] == b"sales"
    assert record.headers["dlq.error.type"] == b"ValidationError"
    assert b"Invalid JSON" in record.headers["dlq.error"]
    assert record.headers["trace"] == b"t-1"
    # The worker is still up and ready after it.
    assert api.get(f"{system['sales'].url}/readyz", timeout=5).status_code == 200
