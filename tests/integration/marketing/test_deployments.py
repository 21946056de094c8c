"""A second marketing deployment on the same broker: its own app id, its own
rules file, two workers. Its rules decide differently from the default ones
without a code change, and its two workers still make one lead of one person
when captures of that person reach both at once."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import yaml

from services.marketing.domain.rules import DEFAULT_RULES_FILE
from tests.integration.marketing.conftest import (
    capture,
    create_campaign,
    lead,
    lead_body,
    lead_id_of,
    performance,
)
from tests.system import PORT_BASE, Worker, api, eventually, list_all, post, read_topic, unique_email

STRICT_VERSION = "strict-test-1"


@pytest.fixture(scope="module")
def strict(system: dict[str, Worker], tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    """Two workers of a deployment whose rules file says: no fast lane for
    hand-raisers, a threshold of 150, and consent at capture on every channel."""
    rules: dict[str, Any] = yaml.safe_load(DEFAULT_RULES_FILE.read_text())
    rules |= {"version": STRICT_VERSION, "threshold": 150, "hand_raiser_intents": []}
    rules["capture"]["consent_required_channels"] = ["web", "email", "social", "advertising", "event"]
    path = tmp_path_factory.mktemp("rules") / "strict.yaml"
    path.write_text(yaml.safe_dump(rules))
    env = {"LEADFLOW_APP_ID": "leadflow-marketing-strict", "LEADFLOW_RULES_FILE": str(path)}
    workers = [Worker("marketing", PORT_BASE + port, env=env) for port in (20, 21)]
    try:
        for worker in workers:
            worker.start()
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda w: w.wait_ready(), workers))
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def test_a_rules_file_swapped_without_code_changes_decides_differently(
    system: dict[str, Worker], strict: list[Worker]
) -> None:
    default_url, strict_url = system["marketing"].url, strict[0].url
    # The same kind of lead: a manager at a software company asking for a demo.
    hand_raiser = {"intent": "demo_request", "channel": "web"}
    by_default = capture(default_url, unique_email("demo"), **hand_raiser)
    by_strict = capture(strict_url, unique_email("demo"), **hand_raiser)
    assert by_default["status"] == "qualified"
    assert by_strict["status"] == "nurturing"
    default_lead, strict_lead = (
        lead(default_url, by_default["lead_id"]),
        lead(strict_url, by_strict["lead_id"]),
    )
    assert default_lead["rules_version"].startswith("default-")
    assert (strict_lead["rules_version"], strict_lead["threshold"]) == (STRICT_VERSION, 150)
    assert default_lead["reasons"][0]["rule"] == "hand_raiser"
    assert "hand_raiser" not in {r["rule"] for r in strict_lead["reasons"]}
    # A badge scan without consent: kept (and disqualified) by default, refused by the strict file.
    scan = {"channel": "event", "consent": False}
    assert capture(default_url, unique_email("scan"), **scan)["status"] == "disqualified"
    refused = api.post(f"{strict_url}/leads", json=lead_body(unique_email("scan"), **scan), timeout=20)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "consent"]
    # Only the default deployment handed its hand-raiser to sales.
    qualified = {r.key for r in read_topic("lead.qualified")}
    assert by_default["lead_id"] in qualified
    assert by_strict["lead_id"] not in qualified


def test_captures_of_one_person_at_two_workers_at_once_make_one_lead(strict: list[Worker]) -> None:
    email = unique_email("twice")
    urls = [strict[n % 2].url for n in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda url: post(f"{url}/leads", lead_body(email)), urls))
    assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    lead_id = lead_id_of(email)
    assert {b["lead_id"] for b in bodies} == {lead_id}
    assert sorted(b["duplicate"] for b in bodies) == [False] + [True] * 9
    # One worker owns the lead and applied all ten; the other forwarded its five,
    # and forwards reads too.
    owners = [w for w in strict if lead_id in _local_lead_ids(w)]
    assert len(owners) == 1
    assert [lead(w.url, lead_id)["captures"] for w in strict] == [10, 10]
    eventually(lambda: any(r.key == lead_id for r in read_topic("lead.created")))
    assert sum(1 for r in read_topic("lead.created") if r.key == lead_id) == 1


def _local_lead_ids(worker: Worker) -> set[str]:
    """The leads on this worker's own partitions (the header asks it not to gather)."""
    return {item["lead_id"] for item in list_all(f"{worker.url}/leads", headers={"x-leadflow-local": "1"})}


def test_a_campaign_s_performance_sums_both_workers_leads_whichever_is_asked(strict: list[Worker]) -> None:
    campaign_id = create_campaign(strict[0].url, "Two-worker expo", budget="900.00")
    lead_ids = _leads_on_both_workers(strict, campaign_id, "spread")
    cost = str((Decimal("900.00") / len(lead_ids)).quantize(Decimal("0.01")))
    expected = {"leads": len(lead_ids), "cost_per_lead": {"amount": cost, "currency": "EUR"}}
    for worker in strict:
        eventually(partial(_performance_shows, worker, campaign_id, expected))
    assert performance(strict[0].url, campaign_id) == performance(strict[1].url, campaign_id)


def _leads_on_both_workers(strict: list[Worker], campaign_id: str, label: str) -> list[str]:
    """Leads of the campaign on both workers' partitions, captured through both."""
    # Either worker finds the campaign (the one not holding it asks its owner).
    for worker in strict:
        eventually(partial(_knows_campaign, worker, campaign_id))
    lead_ids: list[str] = []
    while len(lead_ids) < 4 or not all(set(lead_ids) & _local_lead_ids(w) for w in strict):
        assert len(lead_ids) < 30, "the leads' partitions all belong to one worker"
        worker = strict[len(lead_ids) % 2]
        lead_ids.append(capture(worker.url, unique_email(label), campaign_id=campaign_id)["lead_id"])
    return lead_ids


def _knows_campaign(worker: Worker, campaign_id: str) -> bool:
    return campaign_id in {c["campaign_id"] for c in list_all(f"{worker.url}/campaigns")}


def _performance_shows(worker: Worker, campaign_id: str, expected: dict[str, Any]) -> bool:
    found = performance(worker.url, campaign_id)
    return {k: found[k] for k in expected} == expected


def test_the_funnel_sums_both_workers_leads_whichever_is_asked(strict: list[Worker]) -> None:
    campaign_id = create_campaign(strict[0].url, "Two-worker funnel", budget="900.00")
    lead_ids = _leads_on_both_workers(strict, campaign_id, "funnel")

    def funnel(worker: Worker) -> dict[str, Any]:
        answer = api.get(f"{worker.url}/funnel", params={"campaign_id": campaign_id}, timeout=10)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def shows_every_lead(worker: Worker) -> bool:
        found = funnel(worker)
        return found["steps"][0] == {"step": "captured", "count": len(lead_ids), "conversion": None}

    for worker in strict:
        eventually(partial(shows_every_lead, worker))
    one, other = (funnel(worker) for worker in strict)
    assert one | {"as_of": None} == other | {"as_of": None}
    [row] = one["campaigns"]
    assert (row["key"], row["name"], row["captured"]) == (campaign_id, "Two-worker funnel", len(lead_ids))
