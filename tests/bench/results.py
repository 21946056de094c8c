"""Where the benchmarks leave their figures: one JSON file, a key per benchmark."""

import importlib.metadata
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

from schemas.access import LocalIssuer
from tests.system import ROOT

RESULTS = ROOT / ".cache" / "bench" / "results.json"
# The benches' stand-in token issuer: their workers trust it (its service_env),
# their clients call the API routes with its tokens (its auth()).
ISSUER = LocalIssuer(ROOT / ".cache" / "bench" / "issuer")


def machine() -> dict[str, Any]:
    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    pom = (ROOT / "deploy" / "local" / "pom.xml").read_text()
    kafka = re.search(r"<kafka.version>(.*)</kafka.version>", pom)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model[1] if model else None,
        "memory_total_mib": int(meminfo["MemTotal"].split()[0]) // 1024,
        "memory_available_mib": int(meminfo["MemAvailable"].split()[0]) // 1024,
        "loadavg": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kafka_broker": kafka[1] if kafka else None,
        "packages": {
            p: importlib.metadata.version(p)
            for p in ("faust-streaming", "aiokafka", "kafka-python", "rocksdict")
        },
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[{"VmRSS": "rss_mib", "VmHWM": "peak_rss_mib"}[key]] = round(int(rest.split()[0]) / 1024, 1)
    return values


def save(key: str, entry: dict[str, Any]) -> Path:
    """`entry` under `key` in results.json, keeping what other benchmarks wrote there."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        existing = json.loads(RESULTS.read_text())
    except (FileNotFoundError, ValueError):
        existing = {}
    existing[key] = entry
    RESULTS.write_text(json.dumps(existing, indent=2, default=str))
    return RESULTS
