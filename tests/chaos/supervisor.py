"""The system under chaos: a broker of the run's own and the services' workers,
kept running the way Kubernetes keeps a StatefulSet's pods: a worker that exits
is started again after 1-3 s with the same identity, web port and data dir."""

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.system import Broker, Worker

SERVICES = ("marketing", "sales", "orders", "webhooks")
RESTART_DELAY = (1.0, 3.0)
# Longest a (re)started worker may take to answer /readyz before the run says so.
READY_TIMEOUT = 180.0


def web_port(base: int, service: str, index: int) -> int:
    """marketing-0 on base+10, sales-1 on base+21...: readable in logs and `ss`."""
    return base + 10 * (SERVICES.index(service) + 1) + index


class RunBroker(Broker):
    """tests.system's broker, on a port and in a home of this run's choosing."""

    def __init__(self, port: int, home: Path) -> None:
        self.port = port
        self.home = home
        self.env = {**os.environ, "LEADFLOW_KAFKA_HOME": str(home), "KAFKA_PORT": str(port)}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """kill -9 the broker, as a node failure would, and return once it is gone."""
        pid = int((self.home / "broker.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def interrupt_on_sigterm() -> None:
    """End a run on SIGTERM (`kill`, a CI timeout) as on Ctrl-C, through its cleanup:
    by default SIGTERM ends the process at once and the broker and workers outlive it."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Restart:
    """One exit of a worker and its way back, as its watcher saw them (monotonic times)."""

    exited: threading.Event = field(default_factory=threading.Event, repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    exited_at: float | None = None
    exit_code: int | None = None
    started_at: float | None = None
    ready_at: float | None = None


@dataclass
class SupervisedWorker(Worker):
    index: int = 0
    run_dir: Path = Path(".cache/chaos")
    # Set by whoever takes the worker down on purpose, before the signal; an
    # exit without one is a crash.
    expected: Restart | None = None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone: its watcher sees the exit
            os.kill(self.pid, signum)


# One client for every probe: a client per probe (httpx.get) builds an SSL context
# each time, which costs more CPU than the probe on a busy two-core machine. No
# keep-alive, so a probe never rides a connection to a worker killed since.
_probes = httpx.Client(timeout=2, limits=httpx.Limits(max_keepalive_connections=0))


def ready(url: str) -> bool:
    try:
        return _probes.get(f"{url}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> float | None:
    """When `condition` first held (monotonic), or None if not within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(interval)
    return None


class Supervisor:
    def __init__(self, workers: list[SupervisedWorker], seed: int) -> None:
        self.workers = workers
        # One generator per worker: restart delays stay reproducible whatever
        # order the watchers' threads run in.
        self._delays = {w.name: random.Random(f"{seed}-{w.name}") for w in workers}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchers: list[threading.Thread] = []
        # Exits nobody asked for, with their restarts.
        self.crashes: list[tuple[str, Restart]] = []

    def of(self, service: str) -> list[SupervisedWorker]:
        return [w for w in self.workers if w.service == service]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
            watcher = threading.Thread(target=self._watch, args=(worker,), name=f"watch-{worker.name}")
            watcher.start()
            self._watchers.append(watcher)

    def all_ready(self, workers: list[SupervisedWorker] | None = None) -> bool:
        chosen = self.workers if workers is None else workers
        with ThreadPoolExecutor(len(chosen)) as pool:
            return all(pool.map(lambda w: ready(w.url), chosen))

    def wait_all_ready(
        self, timeout: float = READY_TIMEOUT, workers: list[SupervisedWorker] | None = None
    ) -> float | None:
        return wait_until(lambda: self.all_ready(workers), timeout, interval=0.3)

    def wait_settled(
        self, workers: list[SupervisedWorker] | None = None, settle: float = 3.0
    ) -> float | None:
        """When the workers were all ready and then stayed so for `settle` s (the
        start of that stretch): a worker that was frozen, or lost the broker,
        answers ready at once, then rejoins its group and is not for a while."""
        deadline = time.monotonic() + READY_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            since = self.wait_all_ready(left, workers)
            if since is None:
                return None
            if wait_until(lambda: not self.all_ready(workers), settle, interval=0.5) is None:
                return since
        return None

    def _watch(self, worker: SupervisedWorker) -> None:
        while True:
            assert worker.process is not None
            code = worker.process.wait()
            exited_at = time.monotonic()
            with self._lock:
                if self._stopping.is_set():
                    return
                restart, worker.expected = worker.expected, None
                if restart is None:
                    restart = Restart()
                    self.crashes.append((worker.name, restart))
            restart.exited_at, restart.exit_code = exited_at, code
            restart.exited.set()
            if self._stopping.wait(self._delays[worker.name].uniform(*RESTART_DELAY)):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                worker.start()
            restart.started_at = time.monotonic()
            restart.ready_at = self._await_ready(worker)
            restart.done.set()

    def _await_ready(self, worker: SupervisedWorker) -> float | None:
        """When the worker answered ready; None if it exited first (its watcher
        goes round again) or did not within READY_TIMEOUT."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stopping.is_set():
            if worker.process is None or worker.process.poll() is not None:
                return None
            if ready(worker.url):
                return time.monotonic()
            time.sleep(0.2)
        return None

    def shutdown(self) -> None:
        with self._lock:
            self._stopping.set()
        for worker in self.workers:
            worker.signal(signal.SIGCONT)  # a frozen worker cannot stop
        with ThreadPoolExecutor(len(self.workers)) as pool:
            list(pool.map(lambda w: w.stop(), self.workers))
        for watcher in self._watchers:
            watcher.join(timeout=10)
