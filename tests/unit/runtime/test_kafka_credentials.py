"""The Kafka credentials the settings give the workers' clients (aiokafka, through
Faust) and the admin client (kafka-python: topics at start, the group hand-over).
tests/integration/secured/ runs them against a broker that checks them."""

import ssl
from typing import Any

import faust
import pytest

from services.runtime import topics
from services.runtime.service import ServiceRuntime, _credentials
from services.runtime.settings import ServiceSettings


def settings(**overrides: Any) -> ServiceSettings:
    values = {"service": "orders", "web_port": 8003}
    return ServiceSettings.model_validate(values | overrides)


@pytest.fixture
def admin_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(topics, "KafkaAdminClient", lambda **options: seen.update(options))
    return seen


def test_the_admin_client_logs_in_as_the_service(admin_options: dict[str, Any]) -> None:
    topics.admin_client(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="leadflow-orders",
            kafka_sasl_password="secret",
            kafka_ssl_cafile="/etc/kafka/ca.crt",
        )
    )
    assert admin_options["security_protocol"] == "SASL_SSL"
    assert admin_options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert admin_options["sasl_plain_username"] == "leadflow-orders"
    assert admin_options["sasl_plain_password"] == "secret"
    assert admin_options["ssl_cafile"] == "/etc/kafka/ca.crt"
    assert "ssl_certfile" not in admin_options


def test_a_client_certificate_is_used_also_with_the_system_cas(admin_options: dict[str, Any]) -> None:
    topics.admin_client(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_certfile="/etc/kafka/user.crt",
            kafka_ssl_keyfile="/etc/kafka/user.key",
        )
    )
    assert admin_options["ssl_certfile"] == "/etc/kafka/user.crt"
    assert admin_options["ssl_keyfile"] == "/etc/kafka/user.key"
    assert "ssl_cafile" not in admin_options
    assert "sasl_mechanism" not in admin_options


def test_plaintext_has_no_credentials(admin_options: dict[str, Any]) -> None:
    topics.admin_client(settings())
    assert admin_options["security_protocol"] == "PLAINTEXT"
    assert _credentials(settings()) is None


def test_the_workers_log_in_over_tls_that_checks_the_broker() -> None:
    credentials = _credentials(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="leadflow-orders",
            kafka_sasl_password="secret",
        )
    )
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("leadflow-orders", "secret")
    context = credentials.ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_sasl_without_tls_sends_no_ssl_context() -> None:
    credentials = _credentials(
        settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
        )
    )
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.ssl_context is None


@pytest.mark.parametrize("create", [True, False])
def test_a_worker_declares_topics_only_where_it_may_create_them(create: bool) -> None:
    # Without Create rights (topics managed by Strimzi) Faust's declaring its own
    # changelogs fails even for topics that exist, and the worker crashes at start.
    runtime = ServiceRuntime(
        settings(create_topics=create),
        title="orders",
        description="",
    )
    assert runtime.app.conf.topic_allow_declare is create
