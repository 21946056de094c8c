"""Replay and the subscriptions replica read topics with plain aiokafka readers, so
they meet poison too: replay queues only what the consumers accept, and the replica
skips a record it cannot read instead of crashing (found by the poison suite)."""

import json

from schemas.envelope import new_event
from services.runtime.tables import MAX_VALUE_BYTES
from services.webhooks.replay import _matching, storable
from services.webhooks.replica import SubscriptionsReplica
from tests.unit.runtime.test_publisher import created
from tests.unit.webhooks.test_subscriptions import subscription

SUBSCRIPTION = subscription(event_types=["lead.created"])


def lead_created(lead_id: str) -> bytes:
    return new_event(created(lead_id), source="/leadflow/test", subject=lead_id).to_json()


def test_replay_queues_a_valid_event_of_the_topic() -> None:
    value = lead_created("lead-1")
    requeue = _matching("lead.created", b"lead-1", value, SUBSCRIPTION, None)
    assert requeue is not None
    assert (requeue.lead_id, requeue.event_type, requeue.body) == ("lead-1", "lead.created", value.decode())


def test_replay_does_not_queue_an_event_too_large_for_a_stored_delivery() -> None:
    # A valid event (fields it does not know are kept) with a body the deliveries
    # table cannot hold: queued, its Requeue would be refused with no one waiting.
    small = lead_created("lead-1")
    event = json.loads(small)
    event["padding"] = "x" * MAX_VALUE_BYTES
    large = json.dumps(event).encode()
    requeue = _matching("lead.created", b"lead-1", large, SUBSCRIPTION, None)
    assert requeue is not None
    assert not storable(requeue)
    near = _matching("lead.created", b"lead-1", small, SUBSCRIPTION, None)
    assert near is not None
    assert storable(near)


def test_replay_skips_every_record_the_consumers_dead_letter() -> None:
    valid = lead_created("lead-1")
    poison = {
        "wrong types": valid.replace(b'"lead_id":"lead-1"', b'"lead_id":["lead-1"]'),
        "another lead's key": valid,
        "data of another lead": valid.replace(b'"lead_id":"lead-1"', b'"lead_id":"lead-2"'),
        "another topic's type": valid.replace(b'"type":"lead.created"', b'"type":"order.created"'),
        "deep nesting": b'{"data":' * 5000 + b"1" + b"}" * 5000,
        "not UTF-8": valid.replace(b'"name":"Ana"', b'"name":"\xff"'),
    }
    for kind, value in poison.items():
        key = b"lead-2" if kind == "another lead's key" else b"lead-1"
        assert _matching("lead.created", key, value, SUBSCRIPTION, None) is None, kind
    # A valid event, but on a topic webhooks does not read.
    assert _matching("leadflow-webhooks-commands", b"lead-1", valid, SUBSCRIPTION, None) is None


def test_the_replica_skips_unreadable_records_and_removes_on_tombstones() -> None:
    replica = SubscriptionsReplica()
    replica.apply(b"\xffsub_poison", b"{not json")
    replica.apply(b"\xffsub_poison", None)
    replica.put(SUBSCRIPTION)
    replica.apply(SUBSCRIPTION.subscription_id.encode(), b"[1]")
    assert replica.all() == [SUBSCRIPTION]
    replica.apply(SUBSCRIPTION.subscription_id.encode(), None)
    assert replica.all() == []
