"""When a stopping worker leaves its group (see services/runtime/membership.py)."""

from typing import Any

import faust
import pytest

from services.runtime import membership
from services.runtime.membership import hand_over, others_in_group
from services.runtime.service import ServiceRuntime
from services.runtime.settings import ServiceSettings


class FakeAdmin:
    def __init__(self, instances: list[str]) -> None:
        self.instances = instances
        self.removed: list[str] = []

    def describe_groups(self, groups: list[str]) -> dict[str, Any]:
        return {g: {"members": [{"group_instance_id": i} for i in self.instances]} for g in groups}

    def remove_group_members(self, group: str, members: list[Any]) -> dict[Any, Any]:
        self.removed += [m.group_instance_id for m in members]
        return {}

    def close(self) -> None:
        pass


def settings(**overrides: Any) -> ServiceSettings:
    values = {"service": "orders", "web_port": 8003, "instance_id": "orders-1", "standby_replicas": 1}
    return ServiceSettings.model_validate(values | overrides)


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin(["orders-0", "orders-1"])
    monkeypatch.setattr(membership, "admin_client", lambda *_, **__: fake)
    return fake


def test_a_worker_with_others_and_their_standbys_leaves(admin: FakeAdmin) -> None:
    assert hand_over(settings()) is True
    assert admin.removed == ["orders-1"]


def test_a_worker_alone_stays_so_its_restart_rejoins_without_a_rebalance(admin: FakeAdmin) -> None:
    admin.instances = ["orders-1"]
    assert hand_over(settings()) is False
    assert admin.removed == []


def test_without_standbys_the_others_would_replay_whole_changelogs_so_it_stays(admin: FakeAdmin) -> None:
    assert hand_over(settings(standby_replicas=0)) is False
    assert admin.removed == []


def test_only_other_members_count() -> None:
    described = {"members": [{"group_instance_id": "orders-0"}, {"group_instance_id": "orders-1"}]}
    assert others_in_group(described, "orders-1") == 1
    assert others_in_group({"members": [{"group_instance_id": "orders-1"}]}, "orders-1") == 0
    assert others_in_group({"members": []}, "orders-1") == 0


async def test_a_stopping_worker_stops_its_consumer_as_soon_as_its_streams_are_drained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The consumer's stop makes the last commit and then the hand-over. In the app's
    # own stop, that is before mode stops its children (the HTTP server with its
    # graceful wait, the agents), where Faust would stop the consumer last.
    runtime = ServiceRuntime(ServiceSettings(service="test", web_port=8009), title="test", description="")
    app: Any = runtime.app
    done: list[str] = []

    async def drained(self: Any) -> None:
        done.append("streams drained, tables closed, producer flushed")

    class Consumer:
        started = True

        async def stop(self) -> None:
            done.append("consumer stopped")

    monkeypatch.setattr(faust.App, "on_stop", drained)
    app._consumer = Consumer()
    await app.on_stop()
    assert done == ["streams drained, tables closed, producer flushed", "consumer stopped"]
