"""One table of who may read and write what: the chart's files/topology.yaml. The
chart's KafkaUsers and the secured local broker's ACLs (deploy/local/acls.py, which
kafka.sh applies) are both derived from it, and must agree."""

import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from schemas.topics import EVENT_TOPICS, dead_letter_topic
from tests.deploy.chart import PRODUCTION_VALUES, ROOT, SERVICES, TOPOLOGY_FILE, render

ACLS_PY = ROOT / "deploy" / "local" / "acls.py"

Acl = tuple[str, str, str, str, str]  # user, resource, name, pattern, operation


def local_acls(*, create_topics: bool) -> set[Acl]:
    command = [sys.executable, str(ACLS_PY), "print", *([] if create_topics else ["--no-create"])]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return {(a["user"], a["resource"], a["name"], a["pattern"], a["operation"]) for a in json.loads(printed)}


def chart_acls(objects: list[dict[str, Any]]) -> set[Acl]:
    acls: set[Acl] = set()
    for user in (o for o in objects if o["kind"] == "KafkaUser"):
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["host"] == "*"
            assert acl.get("type", "allow") == "allow"
            resource = acl["resource"]
            for operation in acl["operations"]:
                acls.add(
                    (
                        user["metadata"]["name"],
                        resource["type"],
                        resource["name"],
                        resource["patternType"],
                        operation,
                    )
                )
    return acls


@pytest.mark.parametrize(
    ("values", "settings", "create_topics"),
    [
        # The services create their topics: the rights the local broker grants.
        ((), {"strimzi.users.enabled": "true", "kafka.securityProtocol": "SASL_SSL"}, True),
        # Strimzi manages the topics: no Create.
        ((PRODUCTION_VALUES,), {}, False),
    ],
    ids=["services-create-topics", "production"],
)
def test_the_charts_kafka_users_have_the_local_brokers_acls(
    values: tuple[Any, ...], settings: dict[str, str], create_topics: bool
) -> None:
    chart = chart_acls(render(*values, settings=settings))
    local = local_acls(create_topics=create_topics)
    assert chart, "no KafkaUser rendered"
    assert sorted(chart - local) == [], "the chart grants more than the local broker"
    assert sorted(local - chart) == [], "the local broker grants more than the chart"


def test_the_table_gives_each_service_exactly_its_topics_from_the_brief() -> None:
    # PRODUCT.md's table: who consumes and who publishes which event topic.
    # Issue 14's funnel: sales publishes deal.updated, orders order.updated; marketing reads
    # them and order.created.
    brief = {
        "marketing": (
            {"deal.closed", "deal.updated", "order.created", "order.updated"},
            {"lead.created", "lead.qualified"},
        ),
        "sales": ({"lead.qualified"}, {"deal.closed", "deal.updated"}),
        "orders": ({"deal.closed"}, {"order.created", "order.updated"}),
        # Issue 13: webhooks reads every public event (subscribers may ask for any) and publishes none.
        "webhooks": (
            {"lead.created", "lead.qualified", "deal.updated"}
            | {"deal.closed", "order.created", "order.updated"},
            set(),
        ),
    }
    table = yaml.safe_load(TOPOLOGY_FILE.read_text())["services"]
    assert set(table) == set(SERVICES)
    acls = local_acls(create_topics=True)
    for service, (consumes, publishes) in brief.items():
        user = f"leadflow-{service}"
        assert (set(table[service]["consumes"]), set(table[service]["publishes"])) == (consumes, publishes)
        mine = {(name, pattern, op) for u, _, name, pattern, op in acls if u == user}
        writes = {name for name, pattern, op in mine if op == "Write" and pattern == "literal"}
        reads = {name for name, pattern, op in mine if op == "Read" and pattern == "literal"}
        assert writes == publishes | {dead_letter_topic(t) for t in consumes}, service
        # Literal reads: the topics it consumes, and its consumer group.
        assert reads == consumes | {user}, service
        prefixes = {name for name, pattern, _ in mine if pattern == "prefix"}
        assert prefixes == {f"{user}-"}, service
        # No event topic is another's to write.
        assert not writes & (set(EVENT_TOPICS) - publishes), service
