"""The Helm chart as the deploy tests see it, rendered by the project's pinned Helm.

`python -m tests.deploy.chart` (`make deploy-generate`) rewrites the two files the
chart and its tests keep in step with other sources:
- deploy/helm/leadflow/files/topology.yaml, each service's topics, from its code;
- deploy/prometheus/rules/leadflow.rules.yaml, the chart's PrometheusRule rendered
  with the default values, which promtool checks and unit-tests.
"""

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from schemas.topics import EVENT_TOPICS, dead_letter_topic

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "leadflow"
PRODUCTION_VALUES = CHART / "values-production.yaml"
# The token issuer every install must name (the chart refuses to render without).
ISSUER_VALUES = Path(__file__).parent / "values" / "issuer.yaml"
RULES_FILE = ROOT / "deploy" / "prometheus" / "rules" / "leadflow.rules.yaml"
TOPOLOGY_FILE = CHART / "files" / "topology.yaml"
SERVICES = ("marketing", "sales", "orders", "webhooks")
# The Kubernetes version the chart is rendered and validated for.
KUBERNETES_VERSION = "1.33.0"
RELEASE = "leadflow"
NAMESPACE = "leadflow"


class RenderError(Exception):
    """`helm template` refused the values; the message is Helm's."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key twice in one mapping (a silent overwrite elsewhere)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = {key for key in keys if keys.count(key) > 1}
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {sorted(duplicates)}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_UniqueKeyLoader) if doc]


@functools.cache
def tool(script: str) -> Path:
    """Run one of deploy/tools' install scripts (quick once installed) and return what it prints."""
    done = subprocess.run(
        [str(ROOT / "deploy" / "tools" / script)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy/tools/{script} failed:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def helm() -> Path:
    return tool("install-helm.sh")


def prometheus_bin() -> Path:
    return tool("install-prometheus.sh")


@functools.cache
def _render(values: tuple[Path, ...], settings: tuple[tuple[str, str], ...], show_only: str | None) -> str:
    command = [
        str(helm()),
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBERNETES_VERSION,
    ]
    for path in values:
        command += ["--values", str(path)]
    for key, value in settings:
        command += ["--set", f"{key}={value}"]
    if show_only:
        command += ["--show-only", show_only]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RenderError(done.stderr.strip())
    return done.stdout


def render(
    *values: Path,
    settings: dict[str, str] | None = None,
    show_only: str | None = None,
    issuer: bool = True,
) -> list[dict[str, Any]]:
    """Every object `helm template` renders for these values files and --set pairs,
    over ISSUER_VALUES unless `issuer` is False."""
    files = (ISSUER_VALUES, *values) if issuer else values
    return load_all(_render(files, tuple(sorted((settings or {}).items())), show_only))


class _Literal(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, as a person writes them."""


_Literal.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def rules_file_text() -> str:
    """deploy/prometheus/rules/leadflow.rules.yaml as the chart renders it with default values."""
    (rule,) = render(
        settings={"metrics.prometheusRule.enabled": "true"}, show_only="templates/prometheusrule.yaml"
    )
    header = (
        "# Generated from deploy/helm/leadflow/templates/prometheusrule.yaml with the default\n"
        "# values (namespace leadflow) by `make deploy-generate`; do not edit by hand.\n"
    )
    body = yaml.dump({"groups": rule["spec"]["groups"]}, Dumper=_Literal, sort_keys=False, width=1_000_000)
    return header + body


@functools.cache
def code_topics(service: str) -> tuple[tuple[str, bool], ...]:
    """(name, compacted) of ServiceRuntime.topic_specs() of one service, read from its
    code in a process of its own (each service module builds its app on import)."""
    script = (
        "import importlib, json\n"
        f"for module in ('agents', 'views'): importlib.import_module('services.{service}.' + module)\n"
        f"from services.{service}.app import runtime\n"
        "print(json.dumps([[s.name, s.compacted] for s in runtime.topic_specs()]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "LEADFLOW_LOG_FORMAT": "text"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not read the topics of {service}:\n{done.stderr}")
    return tuple((name, compacted) for name, compacted in json.loads(done.stdout.strip().splitlines()[-1]))


def topology_file_text() -> str:
    """deploy/helm/leadflow/files/topology.yaml as the services' code declares its topics."""
    lines = [
        "# Which topics each service reads, writes and owns, from the services' code",
        "# (ServiceRuntime.topic_specs()) by `make deploy-generate`; do not edit by hand.",
        "# Internal topics are <app id>-<suffix> (each with its .dlq), changelogs",
        "# <app id>-<table>-changelog. Every event topic gets a .dlq.",
        f"events: [{', '.join(EVENT_TOPICS)}]",
        "services:",
    ]
    for service in SERVICES:
        names = dict(code_topics(service))
        prefix = f"leadflow-{service}-"
        consumes = [t for t in EVENT_TOPICS if dead_letter_topic(t) in names]
        publishes = [t for t in EVENT_TOPICS if t in names and t not in consumes]
        internal = [
            n.removeprefix(prefix)
            for n, compacted in names.items()
            if n.startswith(prefix) and not compacted and not n.endswith(".dlq")
        ]
        tables = [
            n.removeprefix(prefix).removesuffix("-changelog") for n, compacted in names.items() if compacted
        ]
        lines.append(f"  {service}:")
        for key, values in (
            ("consumes", consumes),
            ("publishes", publishes),
            ("internal", internal),
            ("tables", tables),
        ):
            lines.append(f"    {key}: [{', '.join(values)}]")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    for path, text in ((TOPOLOGY_FILE, topology_file_text()), (RULES_FILE, rules_file_text())):
        path.write_text(text)
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
