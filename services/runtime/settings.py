"""Settings every service shares, read from LEADFLOW_* environment variables."""

from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Subclassed once per service, which sets its own defaults (name, port)."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    service: str
    web_port: int
    # Overrides the Faust app id (consumer group, internal topic prefix); lets a
    # second, independent deployment of a service share a cluster.
    app_id_override: str | None = Field(default=None, alias="LEADFLOW_APP_ID")
    web_host: str = "127.0.0.1"
    # The URL other workers of this service use to reach this one (forwarded requests).
    advertised_url: str | None = None

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    # Off where the cluster's topics are managed elsewhere (Strimzi KafkaTopic).
    create_topics: bool = True

    # Kafka static group membership: a name that stays the same across restarts of
    # one worker (the StatefulSet pod name). A restarted worker then takes its
    # partitions back at once instead of waiting out its old session. Leave it unset
    # where names change on every restart (a Deployment's pods).
    instance_id: str | None = Field(default=None, min_length=1, max_length=249)
    # How long the group waits for a silent worker before moving its partitions:
    # bounds the stall after a crash without static membership, a scale-down or a
    # frozen worker. The broker refuses less than 6 s (group.min.session.timeout.ms).
    session_timeout_seconds: float = Field(default=10.0, ge=6.0, le=300.0)
    # A worker learns from its next heartbeat that the group rebalances (a worker
    # handing its partitions over, or one joining): on average half of this passes
    # before the partitions move.
    heartbeat_interval_seconds: float = Field(default=1.0, gt=0)
    # How long the broker holds a fetch that finds nothing new. Every other request
    # of the consumer to that broker (the offset lookups of a recovery, the seek to
    # committed offsets) queues behind it on the same connection: with Faust's fixed
    # 1,500 ms each step of a restarted worker's recovery took 1.5 s. Records that
    # arrive end the wait at once, so this costs no latency, only idle fetches.
    fetch_max_wait_ms: int = Field(default=100, ge=10, le=1500)

    store: str = "memory://"
    data_dir: Path = Path(".cache/data")
    standby_replicas: int = Field(default=0, ge=0)
    # RocksDB's memory per table partition (one database each, standbys' too):
    # Faust's defaults, 3 write buffers of 64 MiB and a 2 GiB block cache per
    # database, let a worker's RSS grow with its data past any pod's memory limit.
    # With these a partition holds at most 2 write buffers and its cache.
    rocksdb_write_buffer_mib: int = Field(default=4, ge=1, le=256)
    rocksdb_block_cache_mib: int = Field(default=8, ge=1, le=4096)

    # On shutdown, how long the HTTP server waits for open connections (clients'
    # and other workers' keep-alives) before closing them: a rolling restart is
    # not held up by idle connections.
    http_shutdown_seconds: float = Field(default=1.0, ge=0)

    # How long the producer holds a record to send it with others: a few ms of
    # latency for one request per batch instead of one per record.
    producer_linger_ms: float = Field(default=5.0, ge=0, le=1000)

    # How long an HTTP write waits for its command to be applied.
    command_timeout_seconds: float = Field(default=15.0, gt=0)

    # Who may call the API (services/runtime/auth.py): the issuer of its bearer
    # tokens and where its keys are. No issuer, no start: there is no open mode.
    auth_issuer: str | None = None
    auth_audience: str = "leadflow"
    auth_jwks_url: AnyHttpUrl | None = None
    auth_public_key_file: Path | None = None
    # The issuer's OAuth2 token endpoint: /docs then offers the client-credentials
    # flow (its Authorize button gets a token there) besides pasting a token.
    auth_token_url: AnyHttpUrl | None = None
    # At most one fetch of the JWKS per this many seconds for unknown key ids.
    auth_jwks_refresh_cooldown_seconds: float = Field(default=10.0, ge=0, le=3600)
    # Asymmetric only, and never taken from the token itself.
    auth_algorithms: list[
        Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
    ] = Field(default=["RS256"], min_length=1)
    auth_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # A token that passed is remembered this long at most (never past its expiry);
    # 0 checks every request's signature again.
    auth_token_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    # Set, /metrics answers only to `Authorization: Bearer <this>` (Prometheus'
    # bearer token); unset, it is open like /healthz and /readyz.
    metrics_token: SecretStr | None = None
    # Largest request body accepted; a bigger one is refused with 413.
    max_body_bytes: int = Field(default=1_000_000, ge=1024)

    # uvloop runs the worker's event loop (Faust's stream machinery, aiokafka, the
    # HTTP server) in C; "asyncio" is the standard library's, to compare or debug.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    # Namespace for ids derived from natural keys (uuid5); one per deployment.
    id_namespace: UUID = UUID("6f1b3d2e-2c1a-4d53-9a55-1eadf10e0001")

    @model_validator(mode="after")
    def _heartbeats_fit_in_a_session(self) -> "ServiceSettings":
        # Kafka's rule: several heartbeats per session, or one lost packet ends it.
        if self.heartbeat_interval_seconds * 3 > self.session_timeout_seconds:
            raise ValueError("heartbeat_interval_seconds must be at most a third of session_timeout_seconds")
        return self

    @property
    def app_id(self) -> str:
        """Faust app id: the consumer group and the prefix of internal topics."""
        return self.app_id_override or f"leadflow-{self.service}"

    @property
    def source(self) -> str:
        """CloudEvents `source` of what this service publishes."""
        return f"/leadflow/{self.service}"

    @property
    def url(self) -> str:
        return self.advertised_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def table_options(self) -> dict[str, int]:
        """Options for each table's store (Faust's RocksDBOptions); none in memory."""
        if not self.store.startswith("rocksdb:"):
            return {}
        mib = 1024 * 1024
        return {
            "write_buffer_size": self.rocksdb_write_buffer_mib * mib,
            "max_write_buffer_number": 2,
            "block_cache_size": self.rocksdb_block_cache_mib * mib,
        }
