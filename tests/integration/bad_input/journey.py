"""Real data through the running services: ids for the fuzzer to aim at, the
valid lead that must still go end to end after the bad input, and a system of
its own for the poison."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tests.chaos.supervisor import RunBroker
from tests.system import ROOT, Worker, api, eventually, unique_email

# The services a lead goes through, which `Urls` and the fuzzer address.
SERVICES = ("marketing", "sales", "orders")
# What start_own_system runs: webhooks reads every event topic, so poison meets it too.
WORKERS = (*SERVICES, "webhooks")
# A receiver of the tests listens on plain http on 127.0.0.1: webhooks may subscribe
# it. A URL the fuzzer makes up gets a second to answer its verification, so a
# fuzzed create does not wait ten.
WORKER_ENV = {
    "webhooks": {
        "LEADFLOW_ALLOW_PRIVATE_TARGETS": "true",
        "LEADFLOW_ALLOW_HTTP_TARGETS": "true",
        "LEADFLOW_ATTEMPT_TIMEOUT_SECONDS": "1",
    }
}


@dataclass(frozen=True)
class Urls:
    marketing: str
    sales: str
    orders: str

    def of(self, service: str) -> str:
        url: str = getattr(self, service)
        return url


def capture(urls: Urls, *, campaign_id: str | None = None, intent: str | None = "demo_request") -> str:
    body = {
        "channel": "event",
        "campaign_id": campaign_id,
        "contact": {"email": unique_email("badinput"), "name": "Ana Ruiz", "title": "CTO", "phone": None},
        "company": {"name": "Acme Freight", "industry": "logistics", "size": 800, "country": "DE"},
        "consent": True,
        "intent": intent,
    }
    answer = api.post(f"{urls.marketing}/leads", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    lead_id: str = answer.json()["lead_id"]
    return lead_id


def first_item(url: str, params: dict[str, str], timeout: float) -> dict[str, Any]:
    """The first item a list endpoint answers for `params`, once there is one."""

    def find() -> dict[str, Any] | None:
        items: list[dict[str, Any]] = api.get(url, params=params, timeout=10).json()["items"]
        return items[0] if items else None

    found: dict[str, Any] = eventually(find, timeout=timeout)
    return found


def deal_of(urls: Urls, lead_id: str, timeout: float = 60.0) -> dict[str, Any]:
    return first_item(f"{urls.sales}/deals", {"lead_id": lead_id}, timeout)


def close_won(urls: Urls, deal_id: str) -> dict[str, Any]:
    body = {"outcome": "won", "lines": [{"sku": "LF-CORE", "quantity": 1}]}
    answer = api.post(f"{urls.sales}/deals/{deal_id}/close", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    closed: dict[str, Any] = answer.json()
    return closed


def order_of(urls: Urls, deal_id: str, timeout: float = 60.0) -> dict[str, Any]:
    return first_item(f"{urls.orders}/orders", {"deal_id": deal_id}, timeout)


def seed(urls: Urls, *, open_deals: int = 3, won_deals: int = 2) -> dict[str, list[str]]:
    """A campaign, leads, deals and orders of our own, by path parameter name: ids
    the fuzzer puts into paths, so requests reach the handlers past the 404."""
    campaign = {
        "name": "bad input",
        "channel": "event",
        "budget": {"amount": "5000.00", "currency": "EUR"},
        "starts_on": "2026-03-01",
        "ends_on": "2026-03-31",
    }
    answer = api.post(f"{urls.marketing}/campaigns", json=campaign, timeout=30)
    assert answer.status_code == 201, answer.text
    campaign_id: str = answer.json()["campaign_id"]
    qualified = [capture(urls, campaign_id=campaign_id) for _ in range(open_deals + won_deals)]
    nurturing = capture(urls, campaign_id=campaign_id, intent=None)
    deals = [deal_of(urls, lead_id)["deal_id"] for lead_id in qualified]
    won = deals[:won_deals]
    for deal_id in won:
        close_won(urls, deal_id)
    orders = [order_of(urls, deal_id)["order_id"] for deal_id in won]
    return {
        "campaign_id": [campaign_id],
        "lead_id": [*qualified, nurturing],
        "deal_id": deals,
        "order_id": orders,
    }


def subscribe(webhooks_url: str, receiver_url: str) -> dict[str, list[str]]:
    """A subscription of our own to deal.closed, for the fuzzer to aim at."""
    answer = api.post(
        f"{webhooks_url}/subscriptions",
        json={"url": receiver_url, "event_types": ["deal.closed"]},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return {"subscription_id": [answer.json()["subscription_id"]]}


def lead_to_order(urls: Urls) -> str:
    """A qualified lead through sales to an order, and the outcome back in marketing."""
    lead_id = capture(urls)
    deal = deal_of(urls, lead_id)
    assert deal["stage"] == "prospecting"
    close_won(urls, deal["deal_id"])
    order = order_of(urls, deal["deal_id"])
    assert order["lead_id"] == lead_id
    assert order["total"] == "12000.00"

    def won() -> bool:
        answer = api.get(f"{urls.marketing}/leads/{lead_id}", timeout=10)
        return bool(answer.json()["status"] == "won")

    eventually(won, timeout=60)
    return lead_id


def start_own_system(kafka_port: int, first_web_port: int) -> tuple[RunBroker, dict[str, Worker]]:
    """A fresh broker on `kafka_port` and one worker per service (WORKERS) from
    `first_web_port` on. Poison goes there, not to the session's broker: every later
    reader of the topics (tests, the subscriber tool) would meet it too."""
    broker = RunBroker(kafka_port, ROOT / ".cache" / f"kafka-bad-input-{kafka_port}")
    broker.fresh()
    env = {"LEADFLOW_KAFKA_BOOTSTRAP": broker.bootstrap}
    workers = {
        s: Worker(s, first_web_port + i, env=env | WORKER_ENV.get(s, {})).start()
        for i, s in enumerate(WORKERS)
    }
    try:
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda w: w.wait_ready(timeout=180), workers.values()))
    except BaseException:
        stop_own_system(broker, workers)
        raise
    return broker, workers


def stop_own_system(broker: RunBroker, workers: dict[str, Worker]) -> None:
    for worker in workers.values():
        worker.stop()
    broker.run("stop")


def urls_of(workers: dict[str, Worker]) -> Urls:
    return Urls(*(workers[s].url for s in SERVICES))
