"""Write the contract's generated files: the JSON Schema of every event (envelope
included) into schemas/json/, and the AsyncAPI document schemas/asyncapi.yaml.

    python -m schemas.generate          write the files
    python -m schemas.generate --check  exit 1 when a committed file is stale

One JSON Schema per event type and version: schemas/json/<type>/v<version>.json.
Files of earlier versions stay: they are what released subscribers validate against.
"""

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from schemas import topics
from schemas.envelope import CONTENT_TYPE, CloudEvent
from schemas.events import EVENT_DATA, EventData

HERE = Path(__file__).parent
JSON_DIR = HERE / "json"
ASYNCAPI_PATH = HERE / "asyncapi.yaml"

KAFKA_BINDING = "0.5.0"
DEFAULT_PARTITIONS = 6

# Who publishes and who consumes each topic (PRODUCT.md); a test holds the services to it.
PUBLISHED_BY = {
    topics.LEAD_CREATED: "marketing",
    topics.LEAD_QUALIFIED: "marketing",
    topics.DEAL_CLOSED: "sales",
    topics.ORDER_CREATED: "orders",
    topics.DEAL_UPDATED: "sales",
    topics.ORDER_UPDATED: "orders",
}
CONSUMED_BY = {
    topics.LEAD_CREATED: ("webhooks",),
    topics.LEAD_QUALIFIED: ("sales", "webhooks"),
    topics.DEAL_CLOSED: ("marketing", "orders", "webhooks"),
    topics.DEAL_UPDATED: ("marketing", "webhooks"),
    topics.ORDER_CREATED: ("marketing", "webhooks"),
    topics.ORDER_UPDATED: ("marketing", "webhooks"),
}
# The events the webhooks service delivers to subscribers' URLs (its channel `webhook`).
WEBHOOK_TOPICS = tuple(topic for topic, consumers in CONSUMED_BY.items() if "webhooks" in consumers)

# The headers of a dead letter: part of the contract (services.runtime.deadletters sets them).
SUMMARIES = {
    topics.LEAD_CREATED: "A lead was captured: who, from which company, campaign and channel.",
    topics.LEAD_QUALIFIED: "Marketing qualified a lead and hands it to sales, with the reasons.",
    topics.DEAL_CLOSED: "Sales closed a deal: won (with lines and amount) or lost (with the reason).",
    topics.ORDER_CREATED: "A won deal became an order: customer, lines, total.",
    topics.DEAL_UPDATED: "Sales opened, assigned, moved or first contacted a deal: its state after it.",
    topics.ORDER_UPDATED: "An order was confirmed, fulfilled or cancelled.",
}


def schema_path(event_type: str, version: int) -> Path:
    return JSON_DIR / event_type / f"v{version}.json"


def event_schema(data_model: type[EventData]) -> dict[str, Any]:
    """The schema of a whole record value: the envelope with this event's data."""
    schema = CloudEvent[data_model].model_json_schema(mode="serialization")  # type: ignore[valid-type]
    schema["title"] = f"{data_model.TYPE} v{data_model.VERSION}"
    schema["properties"]["type"] = {"const": data_model.TYPE}
    schema["properties"]["dataschema"] = {"const": data_model.dataschema()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": data_model.dataschema(),
        **schema,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _camel(name: str) -> str:
    first, *rest = name.replace(".", "_").split("_")
    return first + "".join(part.capitalize() for part in rest)


def _message_id(model: type[EventData]) -> str:
    return f"{_camel(model.TYPE)}V{model.VERSION}"


def _ref(*path: str) -> dict[str, str]:
    # JSON Pointer escaping of each part; topic-like ids have none to escape.
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)}


def _event_message(model: type[EventData]) -> dict[str, Any]:
    relative = schema_path(model.TYPE, model.VERSION).relative_to(HERE).as_posix()
    return {
        "name": model.TYPE,
        "title": f"{model.TYPE} v{model.VERSION}",
        "summary": SUMMARIES[model.TYPE],
        "description": (
            f"A CloudEvent whose `type` is `{model.TYPE}` and whose `dataschema` is "
            f"`{model.dataschema()}`. The payload schema is the whole envelope with its data "
            f"(`{relative}`)."
        ),
        "contentType": CONTENT_TYPE,
        "traits": [_ref("components", "messageTraits", "cloudEvent")],
        "payload": {
            "schemaFormat": "application/schema+json;version=draft-2020-12",
            "schema": {"$ref": f"./{relative}"},
        },
        "bindings": {
            "kafka": {"key": _ref("components", "schemas", "leadId"), "bindingVersion": KAFKA_BINDING}
        },
    }


def _channel(topic: str, messages: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "address": topic,
        "servers": [_ref("servers", "local")],
        "description": description,
        "messages": messages,
        "bindings": {
            "kafka": {
                "partitions": DEFAULT_PARTITIONS,
                "topicConfiguration": {"cleanup.policy": ["delete"]},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the four event topics and their dead-letter topics."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in topics.EVENT_TOPICS:
        channel_id = _camel(topic)
        named = channel_id[0].upper() + channel_id[1:]
        versions = [m for m in EVENT_DATA.values() if topic == m.TYPE]
        channels[channel_id] = _channel(
            topic,
            {_message_id(m): _ref("components", "messages", _message_id(m)) for m in versions},
            f"{SUMMARIES[topic]} Published by {PUBLISHED_BY[topic]}; every record is keyed by lead_id.",
        )
        messages.update({_message_id(m): _event_message(m) for m in versions})
        operations[f"{PUBLISHED_BY[topic]}Sends{named}"] = {
            "action": "send",
            "channel": _ref("channels", channel_id),
            "summary": f"{PUBLISHED_BY[topic]} publishes {topic}.",
            "messages": [_ref("channels", channel_id, "messages", _message_id(m)) for m in versions],
        }
        for consumer in CONSUMED_BY.get(topic, ()):
            operations[f"{consumer}Receives{named}"] = {
                "action": "receive",
                "channel": _ref("channels", channel_id),
                "summary": f"{consumer} consumes {topic} (Kafka consumer group leadflow-{consumer}).",
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "const": f"leadflow-{consumer}"},
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            }
        if topic in CONSUMED_BY:
            dlq = topics.dead_letter_topic(topic)
            dlq_id = f"{channel_id}Dlq"
            channels[dlq_id] = _channel(
                dlq,
                {"deadLetter": _ref("components", "messages", "deadLetter")},
                f"Records of {topic} that {' or '.join(CONSUMED_BY[topic])} could not process, "
                "kept with their key, value and headers, and why in dlq.* headers.",
            )
            for consumer in CONSUMED_BY[topic]:
                operations[f"{consumer}DeadLetters{named}"] = {
                    "action": "send",
                    "channel": _ref("channels", dlq_id),
                    "summary": f"{consumer} dead-letters a {topic} record it cannot process.",
                    "messages": [_ref("channels", dlq_id, "messages", "deadLetter")],
                }
    channels["webhook"] = {
        "address": None,  # each subscription's own URL
        "title": "Webhook deliveries",
        "servers": [_ref("servers", "subscriber")],
        "description": (
            "The webhooks service POSTs each event a subscription matches to the subscription's URL: "
            "the body is the CloudEvent exactly as it is on its topic (content-type "
            "application/cloudevents+json), signed per the Standard Webhooks specification with "
            "headers `webhook-id` (the CloudEvent id: deduplicate on it), `webhook-timestamp` (Unix "
            "seconds; refuse one more than 5 minutes off) and `webhook-signature` (`v1,<base64 "
            "HMAC-SHA256>` of `<id>.<timestamp>.<body>`, several space-separated while a rotated "
            "secret overlaps). Any 2xx acknowledges; anything else, or no answer within the timeout, "
            "is retried with exponential backoff for over 24 hours, in order per lead; 410 Gone "
            "disables the subscription. Subscriptions are managed over HTTP "
            "(`/subscriptions` of the webhooks service)."
        ),
        "messages": {
            _message_id(m): _ref("components", "messages", _message_id(m))
            for m in EVENT_DATA.values()
            if m.TYPE in WEBHOOK_TOPICS
        },
    }
    operations["webhooksSendsWebhook"] = {
        "action": "send",
        "channel": _ref("channels", "webhook"),
        "summary": "webhooks delivers matching events to each subscription's URL, signed.",
        "messages": [_ref("channels", "webhook", "messages", i) for i in channels["webhook"]["messages"]],
    }
    messages["deadLetter"] = {
        "name": "dead letter",
        "title": "A record that could not be processed",
        "summary": "The original record, byte for byte, with why and where it came from in headers.",
        "description": (
            "A record that a service cannot process (it does not validate, or the service refuses "
            "or fails on it) goes to `<topic>.dlq`: never dropped, and it never stops a worker. "
            "Key and value are the original's; the original's headers are kept too. It can be "
            "inspected, fixed and produced again to its topic."
        ),
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": list(topics.DLQ_HEADERS),
            "properties": {
                **{
                    name: {"type": "string", "description": text} for name, text in topics.DLQ_HEADERS.items()
                },
                topics.DLQ_VALUE_OMITTED: {
                    "type": "string",
                    "description": "Set when the record with these headers would be over the broker's "
                    "size limit: the value is left out (it stays on its origin topic) and this says "
                    "its size in bytes.",
                },
            },
        },
        "payload": {
            "description": "The original record value, unchanged (any bytes), or none with dlq.value.omitted."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record's key (normally the lead_id)."},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:leadflow:events",
        "info": {
            "title": "Leadflow events",
            "version": "1.0.0",
            "description": (
                "The events of Leadflow, a lead-to-order platform: marketing publishes lead.created and "
                "lead.qualified, sales publishes deal.closed, orders publishes order.created.\n\n"
                "Every record value is a CloudEvents 1.0 envelope in structured JSON mode (record header "
                "`content-type: application/cloudevents+json`) with `specversion`, `id` (a UUID: consumers "
                "deduplicate on it, a record may be delivered more than once), `source`, `type` (the topic), "
                "`time` (RFC 3339, UTC), `subject` (the lead_id, also the record key), `datacontenttype`, "
                "`dataschema` (which JSON Schema and version `data` follows: "
                "`urn:leadflow:schema:<type>:v<N>` is `json/<type>/v<N>.json` beside this document) and "
                "`data`. Money is a decimal string with an ISO 4217 currency, never a float.\n\n"
                "Every topic has the same partition count (6 by default, configurable) and every record is "
                "keyed by lead_id, so one lead's events keep their order and share a partition number on "
                "every topic. A change that would break subscribers bumps the event's version; a version "
                "once released only gains optional fields.\n\n"
                "Dead letters: a record a service cannot process goes to `<topic>.dlq` with the reason and "
                "its origin in `dlq.*` headers.\n\n"
                "Subscribers without Kafka get the same events as signed webhooks (channel `webhook`)."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The local broker of `make up`; elsewhere, your cluster's bootstrap address.",
            },
            "subscriber": {
                "host": "subscriber.example",
                "protocol": "https",
                "description": "A subscriber's own endpoint, named by its subscription's URL.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "leadId": {
                    "type": "string",
                    "description": "The record key: the lead_id, the envelope's subject and data.lead_id.",
                }
            },
            "messages": messages,
            "messageTraits": {
                "cloudEvent": {
                    "headers": {
                        "type": "object",
                        "required": ["content-type"],
                        "properties": {
                            "content-type": {
                                "type": "string",
                                "const": CONTENT_TYPE,
                                "description": "CloudEvents structured mode: the envelope is the value.",
                            }
                        },
                    },
                    "correlationId": {
                        "description": "The CloudEvent id: unique per event, the key to deduplicate on.",
                        "location": "$message.payload#/id",
                    },
                }
            },
        },
    }


class _Dumper(yaml.SafeDumper):
    """Writes text of several paragraphs as a literal block, wrapped for reading."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" not in value:
        return dumper.represent_str(value)
    wrapped = "\n\n".join(textwrap.fill(paragraph, 96) for paragraph in value.split("\n\n"))
    return dumper.represent_scalar("tag:yaml.org,2002:str", wrapped + "\n", style="|")


_Dumper.add_representer(str, _text)


def render_asyncapi(document: dict[str, Any]) -> str:
    header = "# Generated by `python -m schemas.generate` from schemas/*.py: do not edit by hand.\n"
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def expected_files() -> dict[Path, str]:
    files = {
        schema_path(model.TYPE, model.VERSION): render(event_schema(model)) for model in EVENT_DATA.values()
    }
    files[ASYNCAPI_PATH] = render_asyncapi(asyncapi())
    return files


def stale_files() -> list[Path]:
    return [path for path, text in expected_files().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when files are stale")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for path in stale:
            print(f"stale: {path} (run: python -m schemas.generate)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
