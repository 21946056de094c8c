"""Settings every service shares, read from LEADFLOW_* environment variables."""

from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import Field, SecretStr
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

    store: str = "memory://"
    data_dir: Path = Path(".cache/data")
    standby_replicas: int = Field(default=0, ge=0)

    # How long an HTTP write waits for its command to be applied.
    command_timeout_seconds: float = Field(default=15.0, gt=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    # Namespace for ids derived from natural keys (uuid5); one per deployment.
    id_namespace: UUID = UUID("6f1b3d2e-2c1a-4d53-9a55-1eadf10e0001")

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
