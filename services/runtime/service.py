"""One service's Faust worker with its FastAPI app served on the worker's loop.

A service builds one `ServiceRuntime`, declares its topics, tables and agents on
`runtime.app` and its routes on `runtime.api`, then calls `runtime.main()`.
"""

import asyncio
import logging
import logging.config
import ssl
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import faust
import mode.loop
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from faust.contrib.asgi import serve_asgi
from faust.sensors.prometheus import FaustMetrics
from faust.types import TopicT
from faust.types.auth import CredentialsT
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from schemas.topics import dead_letter_topic
from services.runtime.auth import Authorizer, Forbidden, NotConfigured, Unauthenticated
from services.runtime.body_limit import BodyLimit
from services.runtime.changelog_fence import FencedTable
from services.runtime.cluster import Cluster, Forwarded, Unavailable
from services.runtime.commands import Commands, CommandTimeout
from services.runtime.consumer import App
from services.runtime.deadletters import DeadLetters
from services.runtime.errors import DomainError
from services.runtime.events import EventPublisher, event_topic
from services.runtime.http_metrics import instrument_http
from services.runtime.logs import logging_config
from services.runtime.membership import hand_over
from services.runtime.rocksdb_store import (
    faust_store,
    is_rocksdb,
    restore_writes_in_flight,
)
from services.runtime.sensor import LeadflowMonitor
from services.runtime.settings import ServiceSettings
from services.runtime.store_metrics import watch_store_memory
from services.runtime.tables import PromptTableManager
from services.runtime.topics import TopicSpec, ensure_topics

log = logging.getLogger(__name__)

_faust_metrics: FaustMetrics | None = None


def _monitor() -> LeadflowMonitor:
    # Faust's collectors register once per process in the default registry.
    global _faust_metrics
    if _faust_metrics is None:
        _faust_metrics = FaustMetrics.create(REGISTRY, "leadflow_faust")
    return LeadflowMonitor(metrics=_faust_metrics)


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, title: str, description: str) -> None:
        self.settings = settings
        self.app = App(
            settings.app_id,
            broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
            broker_credentials=_credentials(settings),
            store=faust_store(settings.store),
            TableManager=PromptTableManager,
            Table=FencedTable,
            datadir=str(settings.data_dir / settings.service),
            topic_partitions=settings.topic_partitions,
            topic_replication_factor=settings.topic_replication_factor,
            # The assignor's leader topic only serves leader-only timers; we have none.
            topic_disable_leader=True,
            # Where topics are managed elsewhere (Strimzi), Faust must not declare its
            # own: without Create rights that fails even for topics that exist.
            topic_allow_declare=settings.create_topics,
            table_standby_replicas=settings.standby_replicas,
            consumer_group_instance_id=settings.instance_id,
            broker_session_timeout=settings.session_timeout_seconds,
            broker_heartbeat_interval=settings.heartbeat_interval_seconds,
            producer_linger=settings.producer_linger_ms / 1000,
            web_bind=settings.web_host,
            web_port=settings.web_port,
            canonical_url=settings.url,
            logging_config=logging_config(settings.log_level, settings.log_format),
            # Values are bytes we validate ourselves, so a bad record reaches the DLQ.
            value_serializer="raw",
            key_serializer="raw",
        )
        self.app.monitor = _monitor()
        self.app.hand_over = partial(hand_over, settings)
        self.app.table_options = settings.table_options
        self.app.fetch_max_wait_ms = settings.fetch_max_wait_ms
        watch_store_memory(self.app)
        self.dead_letters = DeadLetters(self.app, settings.service)
        self.publisher = EventPublisher(self.app, settings.source, settings.id_namespace)
        self.cluster = Cluster(self.app, settings.url, settings.command_timeout_seconds)
        self.commands: Commands[Any] | None = None
        self._consumed: list[str] = []
        self._published: list[str] = []
        self._internal: list[str] = []
        self._kafka_checked: tuple[float, bool] = (0.0, False)
        # A service's own conditions for /readyz, by name, besides the ones every worker has.
        self.ready_when: dict[str, Callable[[], bool]] = {}
        self.auth = Authorizer(settings)
        self.api = FastAPI(title=title, description=description, version="1")
        instrument_http(self.api)
        self.api.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
        self._install_web()
        serve_asgi(
            self.app,
            self.api,
            host=settings.web_host,
            port=settings.web_port,
            timeout_graceful_shutdown=settings.http_shutdown_seconds,
        )

    def requires(self, *scopes: str) -> list[Any]:
        """Route dependencies: a valid bearer token holding every one of `scopes`
        (none: any valid token). `/docs` shows them on the route."""
        return [Security(self.auth.dependency, scopes=list(scopes))]

    # -- declaring topics -------------------------------------------------

    def consumes(self, name: str) -> TopicT:
        """An event topic this service reads (its DLQ is created with it)."""
        self._consumed.append(name)
        return event_topic(self.app, name)

    def publishes(self, *names: str) -> None:
        self._published.extend(names)

    def internal_topic(self, suffix: str) -> TopicT:
        """A topic of this service's own (`<app id>-<suffix>`), e.g. to re-key a
        stream; created with the others, its DLQ included."""
        name = f"{self.settings.app_id}-{suffix}"
        self._internal.append(name)
        return event_topic(self.app, name)

    def command_channel(self, model: Any) -> Commands[Any]:
        self.commands = Commands(
            self.app,
            model,
            partitions=self.settings.topic_partitions,
            timeout=self.settings.command_timeout_seconds,
            dead_letters=self.dead_letters,
        )
        return self.commands

    def topic_specs(self) -> list[TopicSpec]:
        names = [*self._published, *self._consumed, *self._internal]
        names += [dead_letter_topic(n) for n in [*self._consumed, *self._internal]]
        if self.commands is not None:
            command_topic = self.commands.topic.get_topic_name()
            names += [command_topic, dead_letter_topic(command_topic)]
        specs = [TopicSpec(n) for n in dict.fromkeys(names)]
        specs += [
            TopicSpec(table.changelog_topic.get_topic_name(), compacted=True)
            for table in self.app.tables.values()
        ]
        return specs

    # -- web --------------------------------------------------------------

    def _install_web(self) -> None:
        api = self.api

        @api.exception_handler(DomainError)
        async def refused(_: Request, error: DomainError) -> JSONResponse:
            return JSONResponse(error.to_body(), status_code=error.status)

        @api.exception_handler(RequestValidationError)
        async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
            # FastAPI's own handler echoes each bad input, and an infinite float or a
            # lone surrogate in it cannot be written as JSON: a 500 for a bad request.
            return JSONResponse({"detail": [_problem(e) for e in error.errors()]}, status_code=422)

        @api.exception_handler(Unauthenticated)
        @api.exception_handler(Forbidden)
        async def refused_caller(_: Request, error: Unauthenticated | Forbidden) -> JSONResponse:
            return error.response()

        @api.exception_handler(Forwarded)
        async def forwarded(_: Request, answer: Forwarded) -> Response:
            return answer.response

        @api.exception_handler(Unavailable)
        @api.exception_handler(CommandTimeout)
        async def unavailable(_: Request, error: Exception) -> JSONResponse:
            body = {"detail": [{"msg": str(error), "type": type(error).__name__}]}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})

        @api.get("/healthz", tags=["operations"], summary="The worker process is alive")
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": self.settings.service}

        @api.get("/readyz", tags=["operations"], summary="Connected, assigned, recovered")
        async def readyz() -> JSONResponse:
            checks = await self.readiness()
            ready = all(checks.values())
            body = {"status": "ready" if ready else "not ready", "checks": checks}
            return JSONResponse(body, status_code=200 if ready else 503)

        @api.get(
            "/metrics",
            tags=["operations"],
            summary="Prometheus metrics",
            response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
        )
        async def metrics(request: Request) -> Response:
            self.auth.check_metrics(request)
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def readiness(self) -> dict[str, bool]:
        app = self.app
        return {
            "kafka_connected": await self._kafka_connected(),
            "partitions_assigned": app.consumer is not None
            and not app.rebalancing
            and app.assignor.assigned_actives() is not None,
            "tables_recovered": app.tables.recovery.completed.is_set(),  # type: ignore[attr-defined]
            **{name: check() for name, check in self.ready_when.items()},
        }

    async def _kafka_connected(self) -> bool:
        checked_at, ok = self._kafka_checked
        if time.monotonic() - checked_at < 2.0:
            return ok
        try:
            client = self.app.producer._ensure_producer().client  # type: ignore[attr-defined]
            ok = bool(await asyncio.wait_for(client.force_metadata_update(), 3.0))
        except Exception:  # noqa: BLE001 - any failure means not connected
            ok = False
        self._kafka_checked = (time.monotonic(), ok)
        return ok

    # -- running ------------------------------------------------------------

    def main(self, argv: list[str] | None = None) -> None:
        """`worker` (default) runs the service; `topics` only creates its topics."""
        args = sys.argv[1:] if argv is None else argv
        command = args[0] if args else "worker"
        logging.config.dictConfig(logging_config(self.settings.log_level, self.settings.log_format))
        if command == "topics" or self.settings.create_topics:
            ensure_topics(self.settings, self.topic_specs())
        if command == "topics":
            return
        if command != "worker":
            sys.exit(f"unknown command {command!r}; use 'worker' or 'topics'")
        try:
            self.auth.verifier  # noqa: B018 - checks the settings: no issuer, no start
        except NotConfigured as open_api:
            sys.exit(f"{self.settings.service}: {open_api}")
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.event_loop == "uvloop":
            # Before the worker makes its loop; the consumer's thread makes its own from the same policy.
            mode.loop.use("uvloop")
        loop = type(asyncio.get_event_loop_policy()).__module__
        log.info("worker starting on %s", loop, extra={"service": self.settings.service, "event_loop": loop})
        worker = _Worker(self.app, loglevel=self.settings.log_level.lower())
        if is_rocksdb(self.settings.store):
            tabledir = Path(self.app.conf.tabledir)
            restored = restore_writes_in_flight(tabledir)
            if restored:
                log.warning(
                    "the last stop was not clean: undid %d table writes its changelogs may not hold",
                    restored,
                    extra={"tabledir": str(tabledir)},
                )
        worker.execute_from_commandline()


class _Worker(faust.Worker):
    async def _sentinel_task(self) -> None:
        # mode runs the loop a last full second after every task is gathered, for
        # callbacks still scheduled: a few turns of the loop do, and a stopping
        # worker (a rolling update, one worker alone) is back a second sooner.
        await asyncio.sleep(0.05)


def _problem(error: Any) -> dict[str, Any]:
    """One validation problem: where (`loc`), what (`msg`) and its kind (`type`),
    in text that always encodes (a key may be a lone surrogate)."""

    def text(value: object) -> str:
        return str(value).encode("utf-8", "replace").decode("utf-8")

    loc = [part if isinstance(part, int) else text(part) for part in error.get("loc", ())]
    return {"loc": loc, "msg": text(error.get("msg", "")), "type": text(error.get("type", ""))}


def _credentials(settings: ServiceSettings) -> CredentialsT | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username or "",
        password=password,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )
