"""leadflow: tools for systems that subscribe to Leadflow's events, and local tokens.

    leadflow subscribe deal.closed                 print new deal.closed events as JSON lines
    leadflow subscribe deal.closed order.created --from-beginning --group billing
    leadflow subscribe order.created --forward-url http://billing.local/events
    leadflow token                                 a bearer token of the local development issuer
    leadflow token --scopes leads:read deals:read --lifetime 600

Exit status: 0 when stopped (Ctrl-C, SIGTERM, --max-events reached) or a token
printed, 1 when the broker cannot be reached or an event cannot be forwarded, 2 on
a usage error.
"""

import argparse
import getpass
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from schemas import subscriber, topics
from schemas.access import DEFAULT_ISSUER_DIR, SCOPES, LocalIssuer

TOKEN_SUBJECT = "local-developer"
TOKEN_LIFETIME_SECONDS = 12 * 3600


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
    _token_parser(commands)
    return root


def _token_parser(commands: Any) -> None:
    scopes = "\n".join(f"  {scope:<16} {what}" for scope, what in SCOPES.items())
    token = commands.add_parser(
        "token",
        help="print a bearer token of the local development issuer (local runs only)",
        description=(
            "Print an OAuth2 bearer token (a JWT) signed by the LOCAL DEVELOPMENT issuer: a key pair "
            "kept under --issuer-dir (made on first use), which only the services started by "
            "`make up`, the tests and the benches trust. It is no use against a real deployment, "
            "whose tokens come from its own issuer (LEADFLOW_AUTH_ISSUER).\n\n"
            '  curl -H "Authorization: Bearer $(.venv/bin/leadflow token)" '
            "http://127.0.0.1:8001/leads?limit=5\n\n"
            f"scopes (default: all of them):\n{scopes}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    token.add_argument(
        "--scopes",
        nargs="+",
        choices=list(SCOPES),  # an unknown scope is a usage error (exit 2)
        metavar="SCOPE",
        help="the scopes the token holds, of those listed above (default: every scope)",
    )
    token.add_argument(
        "--subject", default=TOKEN_SUBJECT, help="the token's subject, `sub` (default: %(default)s)"
    )
    token.add_argument(
        "--lifetime",
        type=_seconds,
        default=TOKEN_LIFETIME_SECONDS,
        metavar="SECONDS",
        help="seconds until the token expires (default: %(default)s, 12 hours)",
    )
    token.add_argument(
        "--issuer-dir",
        type=Path,
        metavar="DIR",
        help=f"the local issuer's key pair, made there on first use (default: {DEFAULT_ISSUER_DIR} "
        "in this checkout, which `make up` uses, wherever the command runs from)",
    )


def default_issuer_dir() -> Path:
    """.cache/issuer of the checkout this package runs from (where `make up` keeps
    the keys its services trust); of the current directory for an installed copy."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / DEFAULT_ISSUER_DIR
    return DEFAULT_ISSUER_DIR


def _seconds(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number of seconds: {text!r}")
    return seconds


def token(args: argparse.Namespace) -> int:
    """Print a token of the local development issuer (its keys made on first use)."""
    scopes = list(SCOPES) if args.scopes is None else list(dict.fromkeys(args.scopes))
    issuer = LocalIssuer(args.issuer_dir or default_issuer_dir())
    print(issuer.token(subject=args.subject, scopes=scopes, lifetime_seconds=args.lifetime))
    return 0


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
    if args.command == "token":
        return token(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
