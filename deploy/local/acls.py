"""Kafka ACLs of each service, from the one table of who reads and writes what.

The table is the Helm chart's deploy/helm/leadflow/files/topology.yaml (generated
from the services' code by `make deploy-generate`; Helm reads only files inside
the chart). The chart's KafkaUsers (templates/kafkausers.yaml) and the secured
local broker (`KAFKA_SECURED=1 deploy/local/kafka.sh start`) both derive their
ACLs from it, by the same rules; tests/deploy/test_chart.py checks they agree.

Each service logs in as the user named after its app id, `leadflow-<service>`, and may
- read (and describe) the event topics it consumes, and write their dead-letter topics;
- write (and describe) the event topics it publishes, and no other;
- read, write and describe its own topics, `leadflow-<service>-*`: its command and
  internal topics, their dead-letter topics and its tables' changelogs;
- use its own consumer group, `leadflow-<service>`, and no other;
- with `create_topics` (the services create their topics at start), create every
  topic it uses and describe their configs. Creating a topic it reads does not let
  it write there: services start in any order, and the first creates what it needs.
No transactional ids and no cluster rights: the services use neither.

    python deploy/local/acls.py print [--no-create]      the ACLs, as JSON
    python deploy/local/acls.py apply --bootstrap H:P --cafile CA --user U --password-file F [--no-create]
        make the broker's ACLs of the service users exactly these (as a super user)
"""

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "deploy" / "helm" / "leadflow" / "files" / "topology.yaml"

CREATE = ("Create", "DescribeConfigs")


@dataclass(frozen=True, order=True)
class Acl:
    """One allowed operation, spelled as Strimzi's KafkaUser spells it."""

    user: str  # the principal is User:<user>
    resource: str  # topic | group
    name: str
    pattern: str  # literal | prefix
    operation: str  # Read, Write, Describe, Create, DescribeConfigs


def topology(path: Path = TOPOLOGY) -> dict[str, Any]:
    table: dict[str, Any] = yaml.safe_load(path.read_text())
    return table


def user_of(service: str) -> str:
    """The Kafka user (and app id) of a service."""
    return f"leadflow-{service}"


def service_acls(service: str, shape: dict[str, Any], *, create_topics: bool) -> list[Acl]:
    user = user_of(service)
    create = CREATE if create_topics else ()

    def topic(name: str, pattern: str, *operations: str) -> list[Acl]:
        return [Acl(user, "topic", name, pattern, op) for op in (*operations, *create)]

    acls: list[Acl] = []
    for consumed in shape.get("consumes") or []:
        acls += topic(consumed, "literal", "Read", "Describe")
        acls += topic(f"{consumed}.dlq", "literal", "Write", "Describe")
    for published in shape.get("publishes") or []:
        acls += topic(published, "literal", "Write", "Describe")
    acls += topic(f"{user}-", "prefix", "Read", "Write", "Describe")
    acls += [Acl(user, "group", user, "literal", op) for op in ("Read", "Describe")]
    return acls


def table_acls(*, create_topics: bool = True, path: Path = TOPOLOGY) -> list[Acl]:
    """Every service's ACLs, sorted."""
    services: dict[str, Any] = topology(path)["services"]
    return sorted(
        {
            acl
            for name, shape in services.items()
            for acl in service_acls(name, shape, create_topics=create_topics)
        }
    )


def service_users(path: Path = TOPOLOGY) -> list[str]:
    return [user_of(name) for name in topology(path)["services"]]


# -- applying them to a broker (kafka-python's admin client) -----------------


def _to_kafka(acl: Acl) -> Any:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    operation = "".join(f"_{c}" if c.isupper() else c for c in acl.operation).lstrip("_").upper()
    pattern = ACLResourcePatternType.PREFIXED if acl.pattern == "prefix" else ACLResourcePatternType.LITERAL
    return ACL(
        principal=f"User:{acl.user}",
        host="*",
        operation=ACLOperation[operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(ResourceType[acl.resource.upper()], acl.name, pattern),
    )


def apply(admin: Any, wanted: list[Acl], users: list[str]) -> tuple[int, int]:
    """Make the ACLs of `users` exactly `wanted`: create the missing, delete the
    others (a topic a service no longer uses). Returns (created, deleted)."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    targets = {_to_kafka(acl) for acl in wanted}
    principals = {f"User:{user}" for user in users}
    everything = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    present, _ = admin.describe_acls(
        ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY, everything)
    )
    ours = {acl for acl in present if acl.principal in principals}
    stale = [acl for acl in ours if acl not in targets]
    missing = [acl for acl in targets if acl not in ours]
    if stale:
        for _, _, error in admin.delete_acls(stale):
            if error.errno != 0:
                raise RuntimeError(f"could not delete ACLs: {error.__name__}")
    if missing:
        failed = admin.create_acls(missing)["failed"]
        if failed:
            raise RuntimeError(f"could not create ACLs: {[e.__name__ for e in failed]}")
    return len(missing), len(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("print", help="the ACLs as JSON")
    show.add_argument("--no-create", action="store_true", help="as where topics are managed elsewhere")
    put = commands.add_parser("apply", help="set them on a broker, as a super user over SASL_SSL")
    put.add_argument("--bootstrap", required=True)
    put.add_argument("--cafile", required=True)
    put.add_argument("--user", required=True)
    put.add_argument("--password-file", type=Path, required=True)
    put.add_argument("--no-create", action="store_true", help="where an admin creates the topics")
    args = parser.parse_args(argv)

    if args.command == "print":
        json.dump([asdict(acl) for acl in table_acls(create_topics=not args.no_create)], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0

    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=args.bootstrap,
        client_id="leadflow-acls",
        security_protocol="SASL_SSL",
        ssl_cafile=args.cafile,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=args.user,
        sasl_plain_password=args.password_file.read_text().strip(),
    )
    try:
        created, deleted = apply(admin, table_acls(create_topics=not args.no_create), service_users())
    finally:
        admin.close()
    sys.stderr.write(f"kafka: ACLs of {', '.join(service_users())}: {created} created, {deleted} deleted\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
