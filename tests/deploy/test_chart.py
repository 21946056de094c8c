"""The Helm chart, rendered by the project's pinned Helm for the default and the
production values: valid Kubernetes objects, hardened containers, replicas and
autoscalers within the partition count, topics that match the services' code."""

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from schemas import topics as event_topics
from services.runtime.settings import ServiceSettings
from tests.deploy.chart import (
    CHART,
    ISSUER_VALUES,
    KUBERNETES_VERSION,
    PRODUCTION_VALUES,
    RULES_FILE,
    SERVICES,
    TOPOLOGY_FILE,
    RenderError,
    code_topics,
    helm,
    render,
    rules_file_text,
    topology_file_text,
)

VALUES = {"default": (), "production": (PRODUCTION_VALUES,)}
WORKLOADS = {"Deployment", "StatefulSet"}
# Custom resources: not in Kubernetes' own schemas, so checked by the tests below.
CUSTOM_KINDS = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    "KafkaTopic": "kafka.strimzi.io/v1beta2",
    "KafkaUser": "kafka.strimzi.io/v1beta2",
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
}
BAD_VALUES = Path(__file__).parent / "values"


@pytest.fixture(params=list(VALUES), scope="module")
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(*VALUES[request.param])


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return render(PRODUCTION_VALUES)


def of_kind(objects: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in kinds]


def by_name(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in of_kind(objects, kind)}


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def partitions_of(objects: list[dict[str, Any]]) -> int:
    (count,) = {
        int(env["value"])
        for workload in of_kind(objects, *WORKLOADS)
        for env in workload["spec"]["template"]["spec"]["containers"][0]["env"]
        if env["name"] == "LEADFLOW_TOPIC_PARTITIONS"
    }
    return count


def test_chart_passes_helm_lint() -> None:
    for values in VALUES.values():
        extra = [arg for path in (ISSUER_VALUES, *values) for arg in ("--values", str(path))]
        done = subprocess.run(
            [str(helm()), "lint", "--strict", str(CHART), *extra], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_object_validates_against_the_kubernetes_schemas(rendered: list[dict[str, Any]]) -> None:
    checked = 0
    for obj in rendered:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        # Strict: an unknown or misspelt field fails too.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 15


def test_the_default_values_deploy_the_three_services_with_an_hpa_each() -> None:
    objects = render()
    # RocksDB tables on a volume per pod by default: a restart is ready in seconds.
    for kind in (
        "StatefulSet",
        "Service",
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ):
        # A StatefulSet has a headless Service for its pods besides the service's own.
        assert sorted({component(o) for o in of_kind(objects, kind)}) == sorted(SERVICES), kind
    assert not of_kind(objects, *CUSTOM_KINDS, "Deployment", "NetworkPolicy")


def test_production_values_bring_every_production_concern(production: list[dict[str, Any]]) -> None:
    for kind in ("StatefulSet", "ScaledObject", "TriggerAuthentication", "NetworkPolicy", "ServiceMonitor"):
        assert sorted(component(o) for o in of_kind(production, kind)) == sorted(SERVICES), kind
    assert len(of_kind(production, "KafkaUser")) == len(SERVICES)
    assert len(of_kind(production, "PrometheusRule")) == 1
    # KEDA replaces the HPA: two autoscalers on one workload would fight.
    assert not of_kind(production, "HorizontalPodAutoscaler", "Deployment")


def test_custom_resources_have_the_structure_their_operators_expect(rendered: list[dict[str, Any]]) -> None:
    workloads = {(o["kind"], o["metadata"]["name"]) for o in of_kind(rendered, *WORKLOADS)}
    services = by_name(rendered, "Service")
    auths = by_name(rendered, "TriggerAuthentication")
    partitions = partitions_of(rendered)
    for obj in of_kind(rendered, *CUSTOM_KINDS):
        assert obj["apiVersion"] == CUSTOM_KINDS[obj["kind"]]
        assert obj["metadata"]["name"]
        spec = obj["spec"]
        match obj["kind"]:
            case "ServiceMonitor":
                (service,) = [
                    s
                    for s in services.values()
                    if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
                    and "clusterIP" not in s["spec"]
                ]
                assert service["metadata"]["labels"][spec["jobLabel"]] == f"leadflow-{component(obj)}"
                (endpoint,) = spec["endpoints"]
                assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
            case "PrometheusRule":
                for group in spec["groups"]:
                    assert group["name"]
                    assert group["rules"]
                    for rule in group["rules"]:
                        assert rule["expr"].strip()
                        assert ("alert" in rule) != ("record" in rule)
            case "KafkaTopic":
                assert obj["metadata"]["labels"]["strimzi.io/cluster"]
                assert spec["partitions"] == partitions
                assert spec["replicas"] >= 1
                assert spec["topicName"]
                assert spec["config"]["cleanup.policy"] in ("compact", "delete")
            case "KafkaUser":
                assert obj["metadata"]["labels"]["strimzi.io/cluster"]
                assert spec["authentication"]["type"] in ("scram-sha-512", "tls")
                assert spec["authorization"]["type"] == "simple"
                for acl in spec["authorization"]["acls"]:
                    assert acl["resource"]["type"] in ("topic", "group")
                    assert acl["resource"]["patternType"] in ("literal", "prefix")
                    assert acl["operations"]
                    assert acl["host"] == "*"
            case "ScaledObject":
                target = spec["scaleTargetRef"]
                assert (target["kind"], target["name"]) in workloads
                (trigger,) = spec["triggers"]
                assert trigger["type"] == "kafka"
                assert trigger["metadata"]["consumerGroup"] == f"leadflow-{component(obj)}"
                assert trigger["metadata"]["allowIdleConsumers"] == "false"
                assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
                if "authenticationRef" in trigger:
                    assert trigger["authenticationRef"]["name"] in auths
            case "TriggerAuthentication":
                for ref in spec["secretTargetRef"]:
                    assert ref.keys() == {"parameter", "name", "key"}


def containers(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod spec, container) for every container, init containers too."""
    found = []
    for workload in of_kind(objects, *WORKLOADS):
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            found.append((workload["metadata"]["name"], pod, container))
    return found


def test_every_container_is_probed_limited_and_locked_down(rendered: list[dict[str, Any]]) -> None:
    found = containers(rendered)
    assert len(found) == len(SERVICES)
    for name, pod, container in found:
        where = f"{name}/{container['name']}"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
        startup = container["startupProbe"]
        # Table recovery happens before the HTTP server answers: minutes, not seconds.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, where
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= container["resources"][kind].keys(), where
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"]["drop"] == ["ALL"], where
        assert not context["capabilities"].get("add"), where
        assert context["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        # The read-only root leaves writable only what is mounted.
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/lib/leadflow"} <= mounts, where
        # Graceful shutdown: time to leave the group and flush; endpoints drained first.
        assert pod["terminationGracePeriodSeconds"] >= 30, where
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep", where


def test_workers_advertise_their_pod_address_to_their_peers(rendered: list[dict[str, Any]]) -> None:
    for name, _, container in containers(rendered):
        env = {e["name"]: e for e in container["env"]}
        assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP", name
        port = container["ports"][0]["containerPort"]
        assert env["LEADFLOW_ADVERTISED_URL"]["value"] == f"http://$(POD_IP):{port}", name
        assert env["LEADFLOW_WEB_HOST"]["value"] == "0.0.0.0", name
        assert env["LEADFLOW_WEB_PORT"]["value"] == str(port), name


def test_pods_spread_over_zones_and_nodes_and_drain_one_at_a_time(rendered: list[dict[str, Any]]) -> None:
    budgets = {component(p): p for p in of_kind(rendered, "PodDisruptionBudget")}
    for workload in of_kind(rendered, *WORKLOADS):
        pod = workload["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        selector = workload["spec"]["selector"]["matchLabels"]
        assert all(c["labelSelector"]["matchLabels"] == selector for c in pod["topologySpreadConstraints"])
        budget = budgets[component(workload)]
        assert budget["spec"]["selector"]["matchLabels"] == selector
        assert budget["spec"]["maxUnavailable"] == 1


def test_replicas_and_autoscalers_never_exceed_the_partitions(rendered: list[dict[str, Any]]) -> None:
    partitions = partitions_of(rendered)
    scaled = set()
    for workload in of_kind(rendered, *WORKLOADS):
        assert workload["spec"].get("replicas", 1) <= partitions
    for hpa in of_kind(rendered, "HorizontalPodAutoscaler"):
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
        scaled.add(hpa["spec"]["scaleTargetRef"]["name"])
    for scaler in of_kind(rendered, "ScaledObject"):
        assert 1 <= scaler["spec"]["minReplicaCount"] <= scaler["spec"]["maxReplicaCount"] <= partitions
        scaled.add(scaler["spec"]["scaleTargetRef"]["name"])
    # Each workload has exactly one autoscaler, and then no fixed replica count of its own.
    assert scaled == {w["metadata"]["name"] for w in of_kind(rendered, *WORKLOADS)}
    assert all("replicas" not in w["spec"] for w in of_kind(rendered, *WORKLOADS))


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ("too-many-replicas.yaml", "services.sales.replicas is 7 but topics have 6 partitions"),
        ("hpa-beyond-partitions.yaml", "services.orders.autoscaling.maxReplicas is 8 but topics have 6"),
        ("keda-beyond-partitions.yaml", "services.marketing.autoscaling.maxReplicas is 6 but topics have 4"),
    ],
)
def test_values_that_scale_past_the_partitions_do_not_render(values: str, refusal: str) -> None:
    with pytest.raises(RenderError, match=refusal):
        render(BAD_VALUES / values)


def test_the_partition_count_caps_keda_also_when_raised_with_it() -> None:
    objects = render(
        PRODUCTION_VALUES, settings={"topics.partitions": "24", "defaults.autoscaling.maxReplicas": "24"}
    )
    assert {s["spec"]["maxReplicaCount"] for s in of_kind(objects, "ScaledObject")} == {24, 6}
    assert {t["spec"]["partitions"] for t in of_kind(objects, "KafkaTopic")} == {24}


def test_memory_tables_run_as_deployments_and_rocksdb_tables_as_statefulsets_with_volumes() -> None:
    objects = render(
        settings={
            "defaults.store": "memory",
            "services.sales.store": "rocksdb",
            "defaults.persistence.size": "2Gi",
        }
    )
    (sales,) = of_kind(objects, "StatefulSet")
    assert component(sales) == "sales"
    (claim,) = sales["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert sales["spec"]["serviceName"] in by_name(objects, "Service")
    env = {e["name"]: e.get("value") for e in sales["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LEADFLOW_STORE"] == "rocksdb://"
    assert sorted(component(d) for d in of_kind(objects, "Deployment")) == ["marketing", "orders", "webhooks"]
    for deployment in of_kind(objects, "Deployment"):
        names = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert not names & {"LEADFLOW_ROCKSDB_WRITE_BUFFER_MIB", "LEADFLOW_ROCKSDB_BLOCK_CACHE_MIB"}


def test_rocksdb_workers_bound_the_memory_of_their_tables() -> None:
    objects = render(settings={"services.orders.rocksdb.blockCacheMiB": "32"})
    workloads = of_kind(objects, "StatefulSet")
    assert sorted(component(w) for w in workloads) == ["marketing", "orders", "sales", "webhooks"]
    for workload in workloads:
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        # What the worker makes of them (the settings it reads from these variables).
        options = ServiceSettings(
            service="any",
            web_port=1,
            store=env["LEADFLOW_STORE"],
            rocksdb_write_buffer_mib=env["LEADFLOW_ROCKSDB_WRITE_BUFFER_MIB"],
            rocksdb_block_cache_mib=env["LEADFLOW_ROCKSDB_BLOCK_CACHE_MIB"],
        ).table_options
        cache = 32 if component(workload) == "orders" else 8
        assert options["block_cache_size"] == cache * 1024 * 1024, component(workload)
        assert options["write_buffer_size"] == 4 * 1024 * 1024


def test_statefulset_workers_keep_their_group_membership_across_restarts() -> None:
    objects = render(
        settings={
            "defaults.store": "memory",
            "services.orders.store": "rocksdb",
            "defaults.group.sessionTimeoutSeconds": "12",
        }
    )
    for workload in of_kind(objects, *WORKLOADS):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        where = workload["metadata"]["name"]
        # The service accepts what the chart sets (the same rules the worker applies).
        timing = ServiceSettings(
            service="any",
            web_port=1,
            session_timeout_seconds=env["LEADFLOW_SESSION_TIMEOUT_SECONDS"]["value"],
            heartbeat_interval_seconds=env["LEADFLOW_HEARTBEAT_INTERVAL_SECONDS"]["value"],
        )
        assert timing.session_timeout_seconds == 12, where
        if workload["kind"] == "StatefulSet":
            # A StatefulSet pod keeps its name: it is the static member id.
            assert env["LEADFLOW_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            # Shutdown takes seconds; the grace period leaves room for a slow commit.
            assert workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
        else:
            # A Deployment's pods get new names: a static id would outlive each pod.
            assert "LEADFLOW_INSTANCE_ID" not in env, where
    assert sorted(component(w) for w in of_kind(objects, "StatefulSet")) == ["orders"]
    off = render(settings={"services.orders.group.staticMembership": "false"})
    (orders,) = [w for w in of_kind(off, "StatefulSet") if component(w) == "orders"]
    env_names = {e["name"] for e in orders["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "LEADFLOW_INSTANCE_ID" not in env_names


def test_kafka_credentials_come_from_secrets_only(production: list[dict[str, Any]]) -> None:
    assert not of_kind(production, "Secret", "ConfigMap")
    for name, pod, container in containers(production):
        env = {e["name"]: e for e in container["env"]}
        assert env["LEADFLOW_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        user = env["LEADFLOW_KAFKA_SASL_USERNAME"]["value"]
        # The Secret Strimzi's User Operator writes for the service's KafkaUser.
        assert env["LEADFLOW_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }, name
        assert "value" not in env["LEADFLOW_KAFKA_SASL_PASSWORD"]
        ca_file = Path(env["LEADFLOW_KAFKA_SSL_CAFILE"]["value"])
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(ca_file.parent)]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == "kafka-cluster-ca-cert"
        assert env["LEADFLOW_CREATE_TOPICS"]["value"] == "false"  # Strimzi manages them
    assert {u["metadata"]["name"] for u in of_kind(production, "KafkaUser")} == {
        f"leadflow-{s}" for s in SERVICES
    }


def test_mutual_tls_mounts_each_services_client_certificate() -> None:
    objects = render(
        settings={
            "kafka.securityProtocol": "SSL",
            "kafka.tls.caSecret": "kafka-ca",
            "kafka.tls.clientCertificates": "true",
            "strimzi.users.enabled": "true",
            "strimzi.users.authentication": "tls",
        }
    )
    for name, pod, container in containers(objects):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert "LEADFLOW_KAFKA_SASL_PASSWORD" not in env
        user = f"leadflow-{container['name']}"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["kafka-client"]["secret"]["secretName"] == user, name
        assert env["LEADFLOW_KAFKA_SSL_CERTFILE"] == "/etc/leadflow/kafka/client/user.crt"
        assert env["LEADFLOW_KAFKA_SSL_KEYFILE"] == "/etc/leadflow/kafka/client/user.key"
    assert {u["spec"]["authentication"]["type"] for u in of_kind(objects, "KafkaUser")} == {"tls"}


def test_network_policy_lets_in_only_the_scraper_peers_and_api_clients(
    production: list[dict[str, Any]],
) -> None:
    values = yaml.safe_load(PRODUCTION_VALUES.read_text())["networkPolicy"]
    for policy in of_kind(production, "NetworkPolicy"):
        spec = policy["spec"]
        own = {"podSelector": {"matchLabels": spec["podSelector"]["matchLabels"]}}
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        (ingress,) = spec["ingress"]
        assert ingress["from"] == [*values["scraper"]["peers"], own, *values["apiClients"]]
        egress = list(spec["egress"])
        if component(policy) == "webhooks":
            # Deliveries to subscribers' URLs: public addresses only, by default.
            targets = egress.pop(3)
            defaults = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
            assert targets["to"] == values.get("webhookTargets", defaults["webhookTargets"])["peers"]
            assert "10.0.0.0/8" in targets["to"][0]["ipBlock"]["except"]
            assert [p["port"] for p in targets["ports"]] == [443]
        kafka, peers, dns, issuer = egress
        assert kafka["to"] == values["kafka"]["peers"]
        assert [p["port"] for p in kafka["ports"]] == [9093]
        assert peers["to"] == [own]
        assert {p["port"] for p in dns["ports"]} == {53}
        # The issuer's keys, from its JWKS URL.
        assert issuer["to"] == values["issuer"]["peers"]
        assert [p["port"] for p in issuer["ports"]] == [443]


def test_a_network_policy_without_the_brokers_does_not_render() -> None:
    with pytest.raises(RenderError, match=r"networkPolicy\.kafka\.peers is empty"):
        render(settings={"networkPolicy.enabled": "true"})


def test_topology_file_is_what_the_services_code_declares() -> None:
    assert TOPOLOGY_FILE.read_text() == topology_file_text(), "run `make deploy-generate`"


def test_strimzi_topics_are_exactly_what_the_services_use_with_one_partition_count(
    production: list[dict[str, Any]],
) -> None:
    rendered = {t["spec"]["topicName"]: t for t in of_kind(production, "KafkaTopic")}
    used = {name: compacted for s in SERVICES for name, compacted in code_topics(s)}
    # Every event topic has its DLQ, also those no service here consumes (subscribers' DLQs).
    expected = used | {event_topics.dead_letter_topic(t): False for t in event_topics.EVENT_TOPICS}
    missing = expected.keys() - rendered.keys()
    extra = rendered.keys() - expected.keys()
    stale = "the chart's topics differ from the services' (`make deploy-generate`)"
    assert not missing, f"{stale}: missing {sorted(missing)}"
    assert not extra, f"{stale}: extra {sorted(extra)}"
    for name, compacted in expected.items():
        config = rendered[name]["spec"]["config"]
        assert (config["cleanup.policy"] == "compact") == compacted, name
        assert ("retention.ms" in config) != compacted, name
        assert config["min.insync.replicas"] == 2
        assert rendered[name]["spec"]["replicas"] == 3
    assert {t["spec"]["partitions"] for t in rendered.values()} == {12}


def test_each_kafka_user_may_use_only_its_own_topics_and_group(production: list[dict[str, Any]]) -> None:
    for user in of_kind(production, "KafkaUser"):
        service = component(user)
        acls = user["spec"]["authorization"]["acls"]
        read = {a["resource"]["name"] for a in acls if "Read" in a["operations"]}
        write = {a["resource"]["name"] for a in acls if "Write" in a["operations"]}
        assert f"leadflow-{service}" in read  # its consumer group
        assert f"leadflow-{service}-" in read & write  # its own command/internal/changelog topics
        # Read and write both no other service's internals, and create nothing (Strimzi does).
        others = {f"leadflow-{s}-" for s in SERVICES if s != service}
        assert not others & (read | write)
        assert not any("Create" in a["operations"] for a in acls)
        consumed = {name.removesuffix(".dlq") for name, _ in code_topics(service) if name.endswith(".dlq")}
        for topic in consumed & set(event_topics.EVENT_TOPICS):
            assert topic in read, (service, topic)
            assert f"{topic}.dlq" in write, (service, topic)


def test_committed_alert_rules_are_the_charts(production: list[dict[str, Any]]) -> None:
    assert RULES_FILE.read_text() == rules_file_text(), "run `make deploy-generate`"
    (rule,) = of_kind(production, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    # Production values set their own thresholds and runbook links.
    assert "> 5000" in alerts["LeadflowConsumerLagGrowing"]["expr"]
    assert alerts["LeadflowConsumerLagGrowing"]["annotations"]["runbook_url"] == (
        "https://runbooks.example.com/leadflow#leadflowconsumerlaggrowing"
    )
    assert "[4h]" in alerts["LeadflowNoLeadsCaptured"]["expr"]
    assert "> 14400" in alerts["LeadflowNoLeadsCaptured"]["expr"]


def test_marketing_rules_can_be_replaced_from_values() -> None:
    rules = "version: 2\nthreshold: 40\n"
    objects = render(
        settings={
            "services.marketing.files.rules\\.yaml": rules,
            "services.marketing.env.LEADFLOW_RULES_FILE": "/etc/leadflow/files/rules.yaml",
        }
    )
    (config,) = of_kind(objects, "ConfigMap")
    assert config["data"] == {"rules.yaml": rules}
    (marketing,) = [d for d in of_kind(objects, *WORKLOADS) if component(d) == "marketing"]
    pod = marketing["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["LEADFLOW_RULES_FILE"] == "/etc/leadflow/files/rules.yaml"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["files"]["configMap"]["name"] == config["metadata"]["name"]
    # A changed file rolls the pods.
    assert marketing["spec"]["template"]["metadata"]["annotations"]["checksum/files"]


def auth_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        e["name"]: e for e in container["env"] if e["name"].startswith(("LEADFLOW_AUTH_", "LEADFLOW_METRICS"))
    }


def test_workers_trust_the_configured_issuer_and_metrics_take_the_prometheus_token(
    production: list[dict[str, Any]],
) -> None:
    values = yaml.safe_load(PRODUCTION_VALUES.read_text())
    auth = values["auth"]
    secret = {"name": values["metrics"]["token"]["secretName"], "key": values["metrics"]["token"]["key"]}
    for name, _, container in containers(production):
        env = auth_env(container)
        assert env["LEADFLOW_AUTH_ISSUER"]["value"] == auth["issuer"], name
        assert env["LEADFLOW_AUTH_AUDIENCE"]["value"] == "leadflow", name
        assert env["LEADFLOW_AUTH_JWKS_URL"]["value"] == auth["jwksUrl"], name
        assert "LEADFLOW_AUTH_PUBLIC_KEY_FILE" not in env, name
        assert env["LEADFLOW_AUTH_LEEWAY_SECONDS"]["value"] == "30", name
        assert env["LEADFLOW_AUTH_TOKEN_URL"]["value"] == auth["tokenUrl"], name
        # What the worker reads (pydantic-settings: a JSON list).
        settings = ServiceSettings(
            service="any",
            web_port=1,
            auth_algorithms=yaml.safe_load(env["LEADFLOW_AUTH_ALGORITHMS"]["value"]),
        )
        assert settings.auth_algorithms == ["RS256"], name
        # The metrics token from its Secret only, never a value in the chart.
        assert env["LEADFLOW_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"] == secret, name
        assert "value" not in env["LEADFLOW_METRICS_TOKEN"], name
    for monitor in of_kind(production, "ServiceMonitor"):
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["authorization"] == {"type": "Bearer", "credentials": secret}


def test_the_issuer_s_public_key_can_come_from_a_secret_instead_of_a_jwks_url() -> None:
    objects = render(
        issuer=False,
        settings={
            "auth.issuer": "https://issuer.internal",
            "auth.publicKey.secretName": "leadflow-issuer",
            "auth.algorithms[0]": "ES256",
            "auth.audience": "leadflow-eu",
        },
    )
    for name, pod, container in containers(objects):
        env = auth_env(container)
        assert "LEADFLOW_AUTH_JWKS_URL" not in env, name
        assert "LEADFLOW_METRICS_TOKEN" not in env, name  # /metrics stays open by default
        assert env["LEADFLOW_AUTH_AUDIENCE"]["value"] == "leadflow-eu", name
        assert env["LEADFLOW_AUTH_ALGORITHMS"]["value"] == '["ES256"]', name
        key_file = Path(env["LEADFLOW_AUTH_PUBLIC_KEY_FILE"]["value"])
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(key_file.parent)]
        assert mount["readOnly"] is True, name
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"] == {
            "secretName": "leadflow-issuer",
            "items": [{"key": "public.pem", "path": key_file.name}],
        }, name


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        ({}, r"auth\.issuer is required"),
        (
            {"auth.issuer": "https://issuer.internal"},
            "exactly one of auth.jwksUrl and auth.publicKey.secretName",
        ),
        (
            {
                "auth.issuer": "https://issuer.internal",
                "auth.jwksUrl": "https://issuer.internal/jwks",
                "auth.publicKey.secretName": "leadflow-issuer",
            },
            "exactly one of auth.jwksUrl and auth.publicKey.secretName",
        ),
        (
            {
                "auth.issuer": "https://issuer.internal",
                "auth.jwksUrl": "https://issuer.internal/jwks",
                "networkPolicy.enabled": "true",
                "networkPolicy.kafka.peers[0].ipBlock.cidr": "10.0.0.0/8",
            },
            r"networkPolicy\.issuer\.peers is empty",
        ),
    ],
    ids=["no-issuer", "no-keys", "two-key-sources", "jwks-behind-a-network-policy"],
)
def test_values_without_a_usable_issuer_do_not_render(settings: dict[str, str], refusal: str) -> None:
    with pytest.raises(RenderError, match=refusal):
        render(issuer=False, settings=settings)


def test_the_values_schema_refuses_a_symmetric_algorithm() -> None:
    with pytest.raises(RenderError, match="/auth/algorithms/0"):
        render(settings={"auth.algorithms[0]": "HS256"})
