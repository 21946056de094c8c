"""The service images built from deploy/Dockerfile (`deploy/image.sh build`, the
same as `make image`) and run the way the chart runs them: its environment, user,
read-only root, dropped capabilities, no privilege escalation, memory and CPU
limits, volumes and grace period, taken from `helm template`. The three
containers use host networking against this session's broker, take a lead
through to an order over their HTTP APIs and stop cleanly.

Skips, with the reason, where no container engine can be had (no engine
answers and it cannot be installed or started: no root, no apt-get)."""

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.access import LOCAL_ISSUER
from tests.deploy.chart import SERVICES, render
from tests.system import BOOTSTRAP, ISSUER, PORT_BASE, ROOT, Broker, api, eventually, unique_email

IMAGE_SH = ROOT / "deploy" / "image.sh"
UNAVAILABLE = 3  # deploy/image.sh's exit status when no engine can be had here
TAG = os.environ.get("LEADFLOW_IMAGE_TAG", "local")
# Inside this session's port range, beside the other tests' (system: +1..3).
PORTS = {
    "marketing": PORT_BASE + 81,
    "sales": PORT_BASE + 82,
    "orders": PORT_BASE + 83,
    "webhooks": PORT_BASE + 84,
}
# Four workers starting side by side on 2 shared cores took 5-10 s.
READY_WITHIN_SECONDS = 60.0
# The chart rendered as an install that trusts the tests' issuer by its public key.
CHART_SETTINGS = {
    "auth.issuer": LOCAL_ISSUER,
    "auth.jwksUrl": "",
    "auth.publicKey.secretName": "leadflow-issuer",
}
CACHE_FOLDERS = {".cache", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".import_linter_cache", ".venv"}
REPORT = "container"  # user property that tests/container/conftest.py prints

# The images are built once for the smoke test, which needs the broker: the
# whole module stays out of `make unit` (-m "not broker"). On a fresh machine the
# first test's setup also installs the engine and makes the base (2-3 minutes).
pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(600)]


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{done.stderr}")
    return done


def image_sh(command: str) -> subprocess.CompletedProcess[str]:
    # This test session holds the engine: a dockerd image.sh starts for it stays
    # up until the session's `stop`, even across the build's own start and stop.
    env = {**os.environ, "LEADFLOW_ENGINE_HOLDER": str(os.getpid())}
    done = subprocess.run([str(IMAGE_SH), command], capture_output=True, text=True, env=env, check=False)
    if done.returncode == UNAVAILABLE:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no reason given"
        pytest.skip(f"no container engine can be had here: {reason}")
    assert done.returncode == 0, f"deploy/image.sh {command} failed:\n{done.stderr[-4000:]}"
    return done


@dataclass
class Images:
    names: dict[str, str]
    engine_seconds: float
    built_seconds: float


@pytest.fixture(scope="module")
def images() -> Iterator[Images]:
    """The three images, built (from the layer cache when nothing changed)."""
    started = time.monotonic()
    image_sh("start")
    try:
        if shutil.which("docker") is None:
            pytest.skip("an engine answers but no docker client is on PATH")
        engine = time.monotonic()
        image_sh("build")
        names = {service: f"leadflow-{service}:{TAG}" for service in SERVICES}
        yield Images(names, engine - started, time.monotonic() - engine)
    finally:
        image_sh("stop")


def member_files(image: str) -> Iterator[tuple[str, bytes | None]]:
    """(path, content or None) of everything in the image's filesystem."""
    container = docker("create", image).stdout.strip()
    try:
        with subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE) as export:
            assert export.stdout is not None
            with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
                for member in archive:
                    content = None
                    if member.isfile():
                        extracted = archive.extractfile(member)
                        assert extracted is not None
                        content = extracted.read()
                    yield member.name, content
        assert export.returncode == 0
    finally:
        docker("rm", "-f", container)


def build_machine_certificates() -> dict[str, bytes]:
    """A few base64 lines out of each extra CA certificate of this machine: a copy of
    the certificate, or of a bundle holding it, contains them."""
    found: dict[str, bytes] = {}
    folder = Path("/usr/local/share/ca-certificates")
    for path in sorted(folder.rglob("*.crt")) if folder.is_dir() else []:
        for block in re.findall(rb"-----BEGIN CERTIFICATE-----\s+(.*?)-----END", path.read_bytes(), re.S):
            lines = block.split()
            if len(lines) > 4:
                found[f"{path.name}#{len(found)}"] = b"\n".join(lines[1:4])
    return found


def test_the_image_holds_the_service_and_nothing_of_the_build_machine(
    images: Images, record_property: Any
) -> None:
    layers = {
        service: docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image).stdout
        for service, image in images.names.items()
    }
    # The targets differ in their entrypoint only: one filesystem to look through.
    assert len(set(layers.values())) == 1, layers
    sizes = {
        service: int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout)
        for service, image in images.names.items()
    }
    base = docker("history", "--format", "{{.Size}}", images.names["marketing"]).stdout.split()
    record_property(REPORT, "sizes: " + ", ".join(f"{s} {n / 1e6:.0f} MB" for s, n in sizes.items()))
    record_property(REPORT, f"layers of marketing, newest first: {' '.join(base)}")
    record_property(
        REPORT,
        f"engine answering in {images.engine_seconds:.0f} s (installed and started if need be); "
        f"base and images built in {images.built_seconds:.0f} s (layer cache when unchanged)",
    )

    # By their path under tests/ (an empty tests/__init__.py is many a package's).
    test_files = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py") if p.name != "__init__.py"
    }
    certificates = build_machine_certificates()
    paths: list[str] = []
    offences: list[str] = []
    for name, content in member_files(images.names["marketing"]):
        paths.append(name)
        parts = name.strip("/").split("/")
        if ".git" in parts:
            offences.append(f"git data: {name}")
        if CACHE_FOLDERS & set(parts):
            offences.append(f"a cache: {name}")
        if any(name.endswith("/" + test) or name == test for test in test_files):
            offences.append(f"a test file of the project: {name}")
        if re.search(r"(^|/)bin/(pip[0-9.]*|uv|uvx)$", name):
            offences.append(f"an installer: {name}")
        if name.startswith("run/secrets/"):
            offences.append(f"a build secret: {name}")
        for certificate, probe in certificates.items():
            if content is not None and probe in content:
                offences.append(f"the build machine's CA certificate {certificate} in {name}")
    assert not offences, "\n".join(offences)
    # What it must hold: the locked environment with the services in it, and no source tree.
    site = [p for p in paths if re.fullmatch(r"opt/leadflow/lib/python3\.\d+/site-packages/services", p)]
    assert site, "no services package under /opt/leadflow"
    assert not [p for p in paths if p.endswith(("/uv.lock", "src/pyproject.toml"))]


def quantity(text: str) -> float:
    """A Kubernetes quantity (512Mi, 1, 500m) as a number."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


@dataclass
class Container:
    service: str
    name: str
    port: int
    pod: dict[str, Any]
    ready_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run_command(self, image: str, public_key: Path) -> list[str]:
        """`docker run` for the chart's pod spec, with what differs on this machine."""
        (spec,) = self.pod["containers"]
        security = spec["securityContext"]
        limits = spec["resources"]["limits"]
        env = {e["name"]: e["value"] for e in spec["env"] if "value" in e}
        env |= {
            # What Kubernetes fills in, and where this machine differs: host
            # networking on loopback, this session's broker, a group of its own.
            "POD_IP": "127.0.0.1",
            "LEADFLOW_WEB_HOST": "127.0.0.1",
            "LEADFLOW_WEB_PORT": str(self.port),
            "LEADFLOW_ADVERTISED_URL": self.url,
            "LEADFLOW_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "LEADFLOW_APP_ID": f"leadflow-{self.service}-container",
            "LEADFLOW_INSTANCE_ID": f"{self.service}-container-0",
        }
        command = ["run", "--detach", "--name", self.name, "--network", "host"]
        command += ["--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
        if security["readOnlyRootFilesystem"]:
            command.append("--read-only")
        command += [f"--cap-drop={cap}" for cap in security["capabilities"]["drop"]]
        if not security["allowPrivilegeEscalation"]:
            command += ["--security-opt", "no-new-privileges"]
        command += ["--memory", str(int(quantity(limits["memory"]))), "--cpus", str(quantity(limits["cpu"]))]
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        for mount in spec["volumeMounts"]:
            volume = volumes.get(mount["name"])
            if volume is None:  # the StatefulSet's claim: the data folder, owned by fsGroup
                owner = f"uid={security['runAsUser']},gid={self.pod['securityContext']['fsGroup']}"
                command += ["--tmpfs", f"{mount['mountPath']}:size=256m,{owner}"]
            elif "emptyDir" in volume:
                size = int(quantity(volume["emptyDir"].get("sizeLimit", "64Mi")))
                command += ["--tmpfs", f"{mount['mountPath']}:size={size}"]
            elif "secret" in volume:  # the issuer's public key
                (item,) = volume["secret"]["items"]
                target = f"{mount['mountPath']}/{item['path']}"
                command += ["--volume", f"{public_key}:{target}:ro"]
            else:
                raise AssertionError(f"the chart mounts a volume this test cannot stand in for: {volume}")
        for name, value in env.items():
            command += ["--env", f"{name}={value.replace('$(POD_IP)', '127.0.0.1')}"]
        return [*command, image, *spec.get("args", [])]

    def logs(self) -> str:
        return docker("logs", "--tail", "40", self.name, check=False).stdout

    def inside(self, code: str) -> str:
        done = docker("exec", self.name, "python", "-c", code, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout


def wait_ready(container: Container) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        state = docker("inspect", "--format", "{{.State.Status}}", container.name).stdout.strip()
        assert state == "running", f"{container.name} is {state}:\n{container.logs()}"
        try:
            if httpx.get(f"{container.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{container.name} not ready in {READY_WITHIN_SECONDS:.0f} s:\n{container.logs()}")


@pytest.fixture(scope="module")
def running(
    images: Images, broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Container]]:
    pods = {}
    for obj in render(settings=CHART_SETTINGS):
        if obj["kind"] in ("Deployment", "StatefulSet"):
            pod = obj["spec"]["template"]["spec"]
            pods[pod["containers"][0]["name"]] = pod
    # The issuer's public key, readable by the containers' user whatever the
    # mode of the tests' own copy.
    public_key = tmp_path_factory.mktemp("issuer") / "public.pem"
    shutil.copyfile(ISSUER.ensure_keys().public_key_file, public_key)
    public_key.chmod(0o644)
    containers = {
        service: Container(service, f"leadflow-test-{service}-{PORT_BASE}", PORTS[service], pods[service])
        for service in SERVICES
    }
    try:
        for container in containers.values():
            docker("rm", "--force", container.name)  # left by an interrupted run
        started = time.monotonic()
        for container in containers.values():
            docker(*container.run_command(images.names[container.service], public_key))

        def ready(container: Container) -> None:
            wait_ready(container)
            container.ready_seconds = time.monotonic() - started

        with ThreadPoolExecutor() as pool:
            list(pool.map(ready, containers.values()))
        yield containers
    finally:
        for container in containers.values():
            docker("rm", "--force", container.name, check=False)


# Read from inside: the container's own view of who it is and what it may do.
SELF_REPORT = """
import json, os, pathlib
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
def first(*paths):
    for path in paths:
        if os.path.exists(path):
            return open(path).read().split()
    return None
try:
    open("/opt/leadflow/written", "w")
    read_only = False
except OSError:
    read_only = True
data_writable = os.access("/var/lib/leadflow", os.W_OK)
print(json.dumps({
    "uid": status["Uid"].split(), "gid": status["Gid"].split(),
    "capabilities": int(status["CapEff"], 16), "no_new_privs": status["NoNewPrivs"].strip(),
    "read_only": read_only, "data_writable": data_writable,
    "memory": first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cpu": first("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "cpu_period": first("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
}))
"""


def test_each_container_runs_unprivileged_read_only_and_limited(
    running: dict[str, Container], record_property: Any
) -> None:
    record_property(
        REPORT,
        "ready after start: " + ", ".join(f"{c.service} {c.ready_seconds:.1f} s" for c in running.values()),
    )
    for container in running.values():
        (spec,) = container.pod["containers"]
        limits = spec["resources"]["limits"]
        seen = json.loads(container.inside(SELF_REPORT))
        user = str(spec["securityContext"]["runAsUser"])
        assert set(seen["uid"]) == {user}, seen
        assert set(seen["gid"]) == {str(spec["securityContext"]["runAsGroup"])}, seen
        assert seen["capabilities"] == 0, seen
        assert seen["no_new_privs"] == "1", seen
        assert seen["read_only"] is True, seen
        assert seen["data_writable"] is True, seen
        assert int(seen["memory"][0]) == int(quantity(limits["memory"])), seen
        quota = int(seen["cpu"][0])
        period = int(seen["cpu"][1] if len(seen["cpu"]) > 1 else seen["cpu_period"][0])
        assert quota / period == quantity(limits["cpu"]), seen


def test_a_lead_becomes_an_order_through_the_containers(running: dict[str, Container]) -> None:
    marketing, sales, orders = running["marketing"], running["sales"], running["orders"]
    captured = api.post(
        f"{marketing.url}/leads",
        json={
            "channel": "web",
            "campaign_id": None,
            "contact": {"email": unique_email("container"), "name": "Ana Ruiz", "title": "CTO"},
            "company": {"name": "Acme", "industry": "software", "size": 120, "country": "DE"},
            "consent": True,
            "intent": "demo_request",
        },
    )
    assert captured.status_code == 202, captured.text
    lead_id = captured.json()["lead_id"]
    assert captured.json()["status"] == "qualified"

    def deal() -> dict[str, Any] | None:
        items = api.get(f"{sales.url}/deals", params={"lead_id": lead_id}).json()["items"]
        return items[0] if items else None

    deal_id = eventually(deal)["deal_id"]
    closed = api.post(
        f"{sales.url}/deals/{deal_id}/close",
        json={"outcome": "won", "lines": [{"sku": "LF-CORE", "quantity": 1}]},
    )
    assert closed.status_code == 200, closed.text

    def order() -> dict[str, Any] | None:
        items = api.get(f"{orders.url}/orders", params={"deal_id": deal_id}).json()["items"]
        return items[0] if items else None

    made = eventually(order)
    assert made["lead_id"] == lead_id
    assert made["total"] == closed.json()["amount"]
    eventually(lambda: api.get(f"{marketing.url}/leads/{lead_id}").json()["status"] == "won")


def test_each_container_stops_with_exit_0_within_the_grace_period(
    running: dict[str, Container], record_property: Any
) -> None:
    def stop(container: Container) -> tuple[float, float]:
        """As the kubelet does: the preStop hook, then SIGTERM for what is left of the grace period."""
        grace = float(container.pod["terminationGracePeriodSeconds"])
        (spec,) = container.pod["containers"]
        started = time.monotonic()
        hook = spec.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        if hook:
            done = docker("exec", container.name, *hook, check=False, timeout=grace)
            assert done.returncode == 0, f"preStop {hook}: {done.stderr}"
        hooked = time.monotonic()
        left = max(1, int(grace - (hooked - started)))
        docker("stop", "--time", str(left), container.name, timeout=grace + 30)
        return hooked - started, time.monotonic() - hooked

    with ThreadPoolExecutor() as pool:
        taken = dict(zip(running, pool.map(stop, running.values()), strict=True))
    record_property(
        REPORT,
        "stop: " + ", ".join(f"{s} preStop {p:.1f} s + SIGTERM {t:.1f} s" for s, (p, t) in taken.items()),
    )
    for service, container in running.items():
        state = docker("inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", container.name)
        grace = container.pod["terminationGracePeriodSeconds"]
        assert sum(taken[service]) < grace, f"{service} took {taken[service]} of {grace} s"
        assert state.stdout.split() == ["0", "false"], f"{service}: {state.stdout}\n{container.logs()}"
        log = docker("logs", container.name).stdout + docker("logs", container.name).stderr
        assert "Traceback" not in log, log[-4000:]
