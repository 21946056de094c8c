"""Handing a stopping worker's partitions over at once.

Workers are static group members (`LEADFLOW_INSTANCE_ID`): a restarted worker
takes its partitions back without a rebalance, and a static member does not
leave the group when it stops (aiokafka sends no LeaveGroup for one). Alone in
its group that is right: nobody else could serve the partitions, and its restart
rejoins at once. With other workers in the group it is not: its partitions would
wait for its restart, or for the session timeout if it is gone for good (a
scale-down). So a worker that stops cleanly, after its last commit, removes its
own static membership when other members remain, and they take its partitions
now from their standby replicas. Its restart joins again as a new member.

Without standby replicas it stays: the others would have to replay those
partitions' changelogs from the start (tens of seconds at 200,000 leads), longer
than the restart takes to catch up on its own volume (see the README's
operations section).
"""

import logging
from collections.abc import Mapping
from typing import Any

from kafka.admin import MemberToRemove
from kafka.errors import KafkaError

from services.runtime.settings import ServiceSettings
from services.runtime.topics import admin_client

log = logging.getLogger(__name__)

# Shutdown must not hang on a broker that is down: give up after this.
TIMEOUT_MS = 3000


def others_in_group(described: Mapping[str, Any], instance_id: str) -> int:
    """How many members of a described group (kafka-python's `describe_groups`) are not this worker."""
    return sum(1 for m in described.get("members") or [] if m.get("group_instance_id") != instance_id)


def hand_over(settings: ServiceSettings) -> bool:
    """Leave the group if other members remain; whether this worker left."""
    if settings.instance_id is None:
        return False  # a dynamic member left when its consumer stopped
    if settings.standby_replicas == 0:
        return False  # nobody holds a warm copy of its partitions
    group = settings.app_id
    try:
        admin = admin_client(settings, timeout_ms=TIMEOUT_MS)
    except KafkaError as unreachable:
        log.warning("partitions not handed over: %s", unreachable)
        return False
    try:
        others = others_in_group(admin.describe_groups([group])[group], settings.instance_id)
        if not others:
            return False
        removed = admin.remove_group_members(group, [MemberToRemove(group_instance_id=settings.instance_id)])
        errors = [error.__name__ for error in removed.values() if error.errno != 0]
        if errors:
            log.warning("partitions not handed over: %s", ", ".join(errors))
            return False
        log.info("left the group: %d other members take this worker's partitions", others)
        return True
    except KafkaError as failed:
        log.warning("partitions not handed over: %s", failed)
        return False
    finally:
        admin.close()
