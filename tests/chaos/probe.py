"""The partition probe: whether some worker serves each partition of each
service's tables, judged from outside, as a Kubernetes Service in front of the
workers would see it.

One made-up lead id per partition (`probe-<n>`, hashed the way Kafka's default
partitioner does). Every ~250 ms each of them is read from its service the way a
load balancer would: the workers in turn from a random one, until one answers
for the key's owner (200 or 404: the owner looked it up; the ids never exist, so
404 it is). A 503, a refused connection or a timeout from every worker: that
partition was unserved at that moment. The reads carry the run's bearer token:
a 401 or 403 is no owner's answer either. Per fault, the report then gives the
longest stretch any partition of the faulted service went unserved.
"""

import asyncio
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from kafka.partitioner import murmur2

from tests.chaos.faults import Fault

# A keyed read of each service's table, by lead id (the tables' key).
PATHS = {"marketing": "/leads/{}", "sales": "/deals/deal-{}", "orders": "/orders/order-{}"}
# What an owner answers to a key read; anything else is "try another worker".
SERVED = frozenset({200, 404})
INTERVAL = 0.25  # seconds between two reads of one partition
TIMEOUT = 1.0  # seconds one worker may take to answer one read
# A fault's window: from it until this long after, or its service's next fault.
WINDOW_S = 60.0

# When a read ended (monotonic: its last try's answer, error or timeout) and
# whether some worker served it. Not when it was sent: a read sent just before a
# fault can end unserved because of it, up to two timeouts later.
Sample = tuple[float, bool]


def topic_partitions(env: Mapping[str, str] = os.environ) -> int:
    """The partitions of the services' topics and tables, as the workers read them:
    they inherit the run's environment (the runtime's default is 6)."""
    return int(env.get("LEADFLOW_TOPIC_PARTITIONS", "6"))


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (the Java client's, which Faust's producer
    and tables use): murmur2 of the key bytes, made positive, mod partitions."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def probe_keys(partitions: int) -> list[str]:
    """One lead id per partition, the first `probe-<n>` found for each: index p's
    key is in partition p."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        key = f"probe-{n}"
        found.setdefault(partition_of(key.encode(), partitions), key)
        n += 1
    return [found[p] for p in range(partitions)]


def unserved_stretches(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """When one partition was unserved: from the first read that found it so until
    the next read that found it served, or until the last read if none did."""
    ordered = sorted(samples)
    stretches = []
    began: float | None = None
    for at, served in ordered:
        if not served and began is None:
            began = at
        elif served and began is not None:
            stretches.append((began, at))
            began = None
    if began is not None:
        stretches.append((began, ordered[-1][0]))
    return stretches


def longest_gap(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """The longest part within [start, end] of one partition's unserved stretches:
    a stretch that began before the window counts from `start`, one still going
    at its end until `end`. None without a read in the window."""
    if not any(start <= at <= end for at, _ in samples):
        return None
    parts = (min(to, end) - max(began, start) for began, to in unserved_stretches(samples))
    return max(0.0, max(parts, default=0.0))


def longest_unserved(
    samples: Mapping[str, Sequence[Sequence[Sample]]], services: Sequence[str], start: float, end: float
) -> tuple[float, str] | None:
    """The longest unserved stretch within [start, end] of any partition of
    `services`, and which one ("sales/3"); None without a read in the window."""
    worst: tuple[float, str] | None = None
    for service in services:
        for partition, reads in enumerate(samples.get(service, ())):
            gap = longest_gap(reads, start, end)
            if gap is not None and (worst is None or gap > worst[0]):
                worst = (gap, f"{service}/{partition}")
    return worst


def window_end(fault: Fault, faults: Sequence[Fault]) -> float:
    """60 s after the fault, or the next fault of one of its services if sooner."""
    later = [f.at for f in faults if f.at > fault.at and set(f.services) & set(fault.services)]
    return min([fault.at + WINDOW_S, *later])


def assess(faults: Sequence[Fault], samples: Mapping[str, Sequence[Sequence[Sample]]]) -> None:
    """Set each fault's unserved_s and unserved_partition from the probe's reads."""
    for fault in faults:
        fault.probed = any(service in samples for service in fault.services)
        worst = longest_unserved(samples, fault.services, fault.at, window_end(fault, faults))
        if worst is not None:
            fault.unserved_s, fault.unserved_partition = worst


@dataclass
class Probe:
    """Reads every partition of every service from its own thread and event loop,
    so that the load's backlog of work does not delay a read and make it look
    unanswered."""

    urls: dict[str, list[str]]
    partitions: int
    seed: int
    interval: float = INTERVAL
    timeout: float = TIMEOUT
    # The bearer token the reads carry: key reads are API routes like any other.
    auth: httpx.Auth | None = None
    keys: list[str] = field(init=False)
    # service -> partition -> reads, in order (the reads of one partition never overlap).
    samples: dict[str, list[list[Sample]]] = field(init=False)
    # service -> what the workers did in the reads none served: "503", "ConnectError"...
    failures: dict[str, Counter[str]] = field(init=False)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.keys = probe_keys(self.partitions)
        self.samples = {s: [[] for _ in range(self.partitions)] for s in self.urls}
        self.failures = {s: Counter() for s in self.urls}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._probe_all())
        except BaseException as error:  # noqa: BLE001 - reported by the run
            self.error = error

    async def _probe_all(self) -> None:
        # Reads of a partition do not overlap: one connection each is enough.
        reads = len(self.urls) * self.partitions
        limits = httpx.Limits(max_connections=2 * reads, max_keepalive_connections=2 * reads)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits, auth=self.auth) as http:
            await asyncio.gather(
                *(
                    self._probe(http, service, partition, random.Random(f"{self.seed}-{service}-{partition}"))
                    for service in self.urls
                    for partition in range(self.partitions)
                )
            )

    async def _probe(self, http: httpx.AsyncClient, service: str, partition: int, rng: random.Random) -> None:
        path = PATHS[service].format(self.keys[partition])
        urls = self.urls[service]
        reads = self.samples[service][partition]
        while not self._stop.is_set():
            sent = time.monotonic()
            first = rng.randrange(len(urls))
            failures = []
            for i in range(len(urls)):
                failure = await self._failure(http, urls[(first + i) % len(urls)] + path)
                if failure is None:
                    break
                failures.append(failure)
            served = len(failures) < len(urls)
            reads.append((time.monotonic(), served))
            if not served:
                self.failures[service].update(failures)
            await asyncio.sleep(max(0.0, sent + self.interval - time.monotonic()))

    @staticmethod
    async def _failure(http: httpx.AsyncClient, url: str) -> str | None:
        """None if the worker answered for the key's owner; else what it did."""
        try:
            status = (await http.get(url)).status_code
        except httpx.HTTPError as error:
            return type(error).__name__
        return None if status in SERVED else str(status)

    def summary(self, origin: float, at_least: float = 1.0) -> dict[str, Any]:
        """Per service: reads, reads no worker served and what the workers did in
        them, the longest unserved stretch, and every stretch of `at_least` s or
        more as [partition, from, to] in s since `origin`."""
        out: dict[str, Any] = {"partitions": self.partitions, "keys": self.keys, "services": {}}
        for service, partitions in self.samples.items():
            every = [read for reads in partitions for read in reads]
            worst = longest_unserved(self.samples, [service], origin, float("inf"))
            stretches = [
                [partition, round(began - origin, 2), round(to - origin, 2)]
                for partition, reads in enumerate(partitions)
                for began, to in unserved_stretches(reads)
                if to - began >= at_least
            ]
            out["services"][service] = {
                "reads": len(every),
                "unserved_reads": sum(1 for _, served in every if not served),
                "failures": dict(self.failures[service].most_common()),
                "longest_unserved_s": None if worst is None else round(worst[0], 3),
                "longest_unserved_partition": None if worst is None else worst[1],
                "stretches": sorted(stretches, key=lambda s: s[1]),
            }
        return out
