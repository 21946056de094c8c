"""The AsyncAPI document: what it says matches the models, the committed JSON
Schemas, the dead-letter headers the runtime writes and the services' topics."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
import yaml
from faust.types import Message

from schemas import generate, topics
from schemas.events import EVENT_DATA
from services.runtime import deadletters

DOCUMENT_PATH = generate.ASYNCAPI_PATH


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text())
    return loaded


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def pointer(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def channel(document: dict[str, Any], address: str) -> dict[str, Any]:
    [found] = [c for c in document["channels"].values() if c["address"] == address]
    return found


def test_it_is_an_asyncapi_3_document_of_the_four_topics(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in document["channels"].values()}
    assert set(topics.EVENT_TOPICS) <= addresses
    assert document["defaultContentType"] == "application/cloudevents+json"


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in refs(document):
        if ref.startswith("#/"):
            assert pointer(document, ref) is not None, ref
        else:
            assert (DOCUMENT_PATH.parent / ref).is_file(), ref


@pytest.mark.parametrize("model", list(EVENT_DATA.values()), ids=list(EVENT_DATA))
def test_each_topic_carries_its_event_keyed_by_lead_id_with_its_committed_schema(
    document: dict[str, Any], model: Any
) -> None:
    messages = [pointer(document, m["$ref"]) for m in channel(document, model.TYPE)["messages"].values()]
    [message] = [m for m in messages if m["title"] == f"{model.TYPE} v{model.VERSION}"]
    schema_file = DOCUMENT_PATH.parent / message["payload"]["schema"]["$ref"]
    schema = json.loads(schema_file.read_text())
    assert schema["$id"] == model.dataschema()
    assert schema == generate.event_schema(model)
    assert message["contentType"] == "application/cloudevents+json"
    key = pointer(document, message["bindings"]["kafka"]["key"]["$ref"])
    assert key["type"] == "string"
    assert "lead_id" in key["description"]
    [trait] = [pointer(document, t["$ref"]) for t in message["traits"]]
    assert trait["headers"]["properties"]["content-type"]["const"] == "application/cloudevents+json"


async def test_the_dead_letter_headers_are_the_ones_the_runtime_writes(
    document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[list[tuple[str, bytes]]] = []

    class Topic:
        async def send(self, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
            sent.append(headers)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    dead_letters = deadletters.DeadLetters(faust.App("test-dlq-headers"), "orders")
    monkeypatch.setattr(dead_letters, "topic_for", lambda origin: Topic())
    message = Message("deal.closed", 2, 41, 0.0, 0, [], key=b"lead-1", value=b"{}", checksum=None)
    await dead_letters.send(message, ValueError("total mismatch"))
    [headers_sent] = sent
    written = {name for name, _ in headers_sent}
    headers = document["components"]["messages"]["deadLetter"]["headers"]
    assert set(headers["required"]) == written
    # Besides: the one header a dead letter over the broker's size limit adds.
    assert set(headers["properties"]) == written | {topics.DLQ_VALUE_OMITTED}


def declared_topics(service: str) -> set[str]:
    """The topics a service creates: what it consumes (with a DLQ) and publishes."""
    module = __import__(f"services.{service}.topics", fromlist=["runtime"])
    return {spec.name for spec in module.runtime.topic_specs()}


@pytest.mark.parametrize("service", ["marketing", "sales", "orders", "webhooks"])
def test_publishers_consumers_and_dead_letter_topics_are_the_services_own(
    document: dict[str, Any], service: str
) -> None:
    declared = declared_topics(service)
    for topic in topics.EVENT_TOPICS:
        consumes = topics.dead_letter_topic(topic) in declared
        assert consumes == (service in generate.CONSUMED_BY.get(topic, ())), topic
        publishes = topic in declared and not consumes
        assert publishes == (generate.PUBLISHED_BY[topic] == service), topic
        if consumes:
            dlq = channel(document, topics.dead_letter_topic(topic))
            [message] = [pointer(document, m["$ref"]) for m in dlq["messages"].values()]
            assert message["name"] == "dead letter"


def test_the_committed_document_is_the_generated_one() -> None:
    assert generate.ASYNCAPI_PATH not in generate.stale_files(), "run: python -m schemas.generate"


def test_a_stale_document_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(DOCUMENT_PATH.read_text().replace("deal.closed", "deal.done"))
    monkeypatch.setattr(generate, "ASYNCAPI_PATH", stale)
    assert stale in generate.stale_files()
    assert generate.main(["--check"]) == 1
