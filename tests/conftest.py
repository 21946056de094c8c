"""Fixtures for the tests that need the real system; unit tests need none of them."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.system import PORT_BASE, Broker, Worker

SERVICE_PORTS = {"marketing": PORT_BASE + 1, "sales": PORT_BASE + 2, "orders": PORT_BASE + 3}
# The funnel page on marketing shows sales' forecast, read from the browser.
SERVICE_ENV = {
    "marketing": {"LEADFLOW_FORECAST_URL": f"http://127.0.0.1:{SERVICE_PORTS['sales']}/forecast"},
    "sales": {"LEADFLOW_CORS_ORIGINS": f'["http://127.0.0.1:{SERVICE_PORTS["marketing"]}"]'},
}


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A fresh broker for this test session, stopped at its end."""
    broker = Broker()
    broker.fresh()
    yield broker
    broker.run("stop")


@pytest.fixture(scope="session")
def system(broker: Broker) -> Iterator[dict[str, Worker]]:
    """The three services, one worker each, running for the whole session."""
    workers = {
        name: Worker(name, port, dict(SERVICE_ENV.get(name, {}))) for name, port in SERVICE_PORTS.items()
    }
    for worker in workers.values():
        worker.start()
    try:
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda w: w.wait_ready(), workers.values()))
        yield workers
    finally:
        for worker in workers.values():
            worker.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Anything that starts the system is a broker test and slow.
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "broker" in fixtures or "system" in fixtures:
            item.add_marker(pytest.mark.broker)
            item.add_marker(pytest.mark.slow)
