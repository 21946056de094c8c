"""leadflow: tools for systems that subscribe to Leadflow's events.

    leadflow subscribe deal.closed                 print new deal.closed events as JSON lines
    leadflow subscribe deal.closed order.created --from-beginning --group billing
    leadflow subscribe order.created --forward-url http://billing.local/events

Exit status: 0 when stopped (Ctrl-C, SIGTERM, --max-events reached), 1 when the
broker cannot be reached or an event cannot be forwarded, 2 on a usage error.
"""

import argparse
import getpass
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from kafka.errors import KafkaError

from schemas import subscriber, topics


def _default_group() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in some containers
        user = "anonymous"
    return f"leadflow-subscriber-{user}"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="leadflow",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subscribe = commands.add_parser(
        "subscribe",
        help="print or forward validated events of one or more topics",
        description=(
            "Read events from Kafka, validate each against the committed JSON Schema its dataschema "
            "names, and print it as one JSON line on stdout (or POST it to --forward-url). Invalid "
            "records are reported on stderr and skipped. Offsets are committed once events are "
            "delivered: a restart with the same group resumes where it stopped."
        ),
    )
    subscribe.add_argument(
        "topics", nargs="+", choices=topics.EVENT_TOPICS, metavar="TOPIC", help=", ".join(topics.EVENT_TOPICS)
    )
    subscribe.add_argument(
        "--bootstrap",
        default=os.environ.get("LEADFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        help="Kafka bootstrap servers, host:port[,...] (default: $LEADFLOW_KAFKA_BOOTSTRAP or %(default)s)",
    )
    subscribe.add_argument(
        "--group",
        default=_default_group(),
        help="Kafka consumer group: each group gets every event once (default: %(default)s)",
    )
    start = subscribe.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning",
        action="store_true",
        help="a group with no committed offsets starts at the oldest event",
    )
    start.add_argument(
        "--latest",
        dest="from_beginning",
        action="store_false",
        help="a group with no committed offsets starts with new events only (the default)",
    )
    subscribe.add_argument(
        "--forward-url",
        metavar="URL",
        help="POST each event there (CloudEvents structured mode) instead of printing it",
    )
    subscribe.add_argument("--max-events", type=int, metavar="N", help="stop after N events")
    subscribe.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="give up reaching the broker after this long",
    )
    subscribe.add_argument("--verbose", action="store_true", help="show the Kafka client's warnings")
    return root


def subscribe(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # The client logs every reconnection attempt; what matters is said by this tool.
    logging.getLogger("kafka").setLevel(logging.WARNING if args.verbose else logging.CRITICAL)
    subscription = subscriber.Subscription(
        topics=list(dict.fromkeys(args.topics)),
        bootstrap=args.bootstrap,
        group=args.group,
        from_beginning=args.from_beginning,
        connect_timeout=args.connect_timeout,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        consumer = subscription.connect()
    except subscriber.Unreachable as unreachable:
        print(f"leadflow: {unreachable}", file=sys.stderr)
        return 1
    deliver: Callable[[subscriber.Event], None] = (
        subscriber.forward_to(args.forward_url) if args.forward_url else subscriber.print_to(sys.stdout)
    )
    started = "oldest event" if args.from_beginning else "new events"
    print(
        f"leadflow: subscribed to {', '.join(subscription.topics)} at {args.bootstrap} as group "
        f"{args.group} (a new group starts with {started})",
        file=sys.stderr,
    )
    try:
        subscriber.run(
            consumer,
            subscriber.EventValidator(),
            deliver,
            report=lambda line: print(f"leadflow: {line}", file=sys.stderr, flush=True),
            stop=stop,
            max_events=args.max_events,
        )
    except subscriber.ForwardFailed as failed:
        print(f"leadflow: {failed}; stopping (it will be delivered again on restart)", file=sys.stderr)
        return 1
    except KafkaError as error:
        print(f"leadflow: the broker at {args.bootstrap} failed: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Whoever read stdout went away (`| head`): stop quietly, like other filters.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        consumer.close(autocommit=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    args: Any = parser().parse_args(argv)
    if args.command == "subscribe":
        return subscribe(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
