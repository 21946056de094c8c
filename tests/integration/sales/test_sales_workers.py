"""Sales as two real worker processes on the real broker.

The pair has an app id of its own (its own consumer group, tables and internal
topics), the test team of reps.yaml, a ten-minute follow-up SLA and a clock the
tests move forward (LEADFLOW_CLOCK_CONTROL). Leads come straight onto
lead.qualified, as marketing would put them there. Requests go to either worker:
each must answer for every deal, whichever worker owns it.
"""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from kafka import KafkaConsumer
from kafka.partitioner import murmur2
from prometheus_client.parser import text_string_to_metric_families

from schemas.envelope import CONTENT_TYPE, new_event
from schemas.events import Company, Contact, LeadQualified, ScoreReason
from tests.system import BOOTSTRAP, PORT_BASE, Broker, Worker, api, eventually, list_all, produce, read_topic

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE.parents[2] / "schemas" / "json"
SLA_SECONDS = 600
LOCAL_ONLY = {"x-leadflow-local": "1"}

Pair = tuple[Worker, Worker]


@pytest.fixture(scope="module")
def pair(broker: Broker) -> Iterator[Pair]:
    env = {
        "LEADFLOW_APP_ID": f"leadflow-sales-it-{uuid.uuid4().hex[:8]}",
        "LEADFLOW_REPS_FILE": str(HERE / "reps.yaml"),
        "LEADFLOW_FOLLOW_UP_SLA_SECONDS": str(SLA_SECONDS),
        "LEADFLOW_CLOCK_CONTROL": "true",
    }
    workers = (Worker("sales", PORT_BASE + 10, env=env), Worker("sales", PORT_BASE + 11, env=env))
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.wait_ready(timeout=120)
        # Both at once: the second one joining rebalances the first.
        eventually(lambda: all(get(w, "/readyz").status_code == 200 for w in workers), timeout=90)
        yield workers
    finally:
        for worker in workers:
            worker.stop()


# -- helpers -------------------------------------------------------------------------


def get(worker: Worker, path: str, **params: Any) -> httpx.Response:
    return api.get(f"{worker.url}{path}", params=params, timeout=20)


def post(worker: Worker, path: str, body: dict[str, Any]) -> httpx.Response:
    return api.post(f"{worker.url}{path}", json=body, timeout=20)


def new_lead_id() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


def qualified_record(lead_id: str, country: str, campaign_id: str | None = None) -> bytes:
    data = LeadQualified(
        lead_id=lead_id,
        campaign_id=campaign_id,
        score=75,
        threshold=60,
        reasons=[ScoreReason(rule="intent.demo_request", points=40, detail="asked for a demo")],
        contact=Contact(email=f"{lead_id}@example-corp.com", name="Ana Ruiz", title="CTO", phone="+356 2123"),
        company=Company(name=f"Corp {lead_id}", industry="software", size=80, country=country),
        qualified_at=datetime.now(UTC),
    )
    return new_event(data, source="/leadflow/marketing", subject=lead_id).to_json()


def hand_over(record: bytes, lead_id: str) -> None:
    produce("lead.qualified", lead_id, record, headers=[("content-type", CONTENT_TYPE.encode())])


def new_lead(country: str, campaign_id: str | None = None) -> str:
    lead_id = new_lead_id()
    hand_over(qualified_record(lead_id, country, campaign_id), lead_id)
    return lead_id


def deal_id(lead_id: str) -> str:
    return f"deal-{lead_id}"


def settled(worker: Worker, lead_id: str) -> dict[str, Any]:
    """The deal once the desk has answered for it (an owner, or the queue)."""

    def answered() -> dict[str, Any] | None:
        response = get(worker, f"/deals/{deal_id(lead_id)}")
        if response.status_code != 200:
            return None
        deal: dict[str, Any] = response.json()
        return deal if deal["assignment"] != "pending" else None

    result: dict[str, Any] = eventually(answered, timeout=60)
    return result


def partitions() -> list[int]:
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    try:
        return sorted(consumer.partitions_for_topic("lead.qualified") or [])
    finally:
        consumer.close()


def partition_of(lead_id: str, all_partitions: list[int]) -> int:
    # The Java client's default partitioner, which Faust's producer uses too.
    return all_partitions[(murmur2(lead_id.encode()) & 0x7FFFFFFF) % len(all_partitions)]


def ids_of(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["deal_id"] for item in response.json()["items"]}


def rep(worker: Worker, rep_id: str) -> dict[str, Any]:
    reps = get(worker, "/reps")
    assert reps.status_code == 200, reps.text
    found: dict[str, Any] = next(r for r in reps.json()["items"] if r["rep_id"] == rep_id)
    return found


def closed_records(lead_id: str) -> list[Any]:
    return [r for r in read_topic("deal.closed") if r.key == lead_id]


def gauge(worker: Worker, name: str) -> list[tuple[dict[str, str], float]]:
    text = get(worker, "/metrics").text
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


# -- the tests ------------------------------------------------------------------------


def test_a_redelivered_lead_qualified_makes_one_deal(pair: Pair) -> None:
    one, other = pair
    lead_id = new_lead_id()
    record = qualified_record(lead_id, "MT")
    hand_over(record, lead_id)
    first = settled(one, lead_id)
    assert first["owner"] == "rep-mt"
    load = rep(other, "rep-mt")["open_deals"]
    contacted = post(other, f"/deals/{deal_id(lead_id)}/contacts", {"channel": "call", "note": "intro"})
    assert contacted.status_code == 200, contacted.text

    # The very same record again, then a lead behind it on its partition: once that
    # one's deal is there, the redelivery has been handled.
    hand_over(record, lead_id)
    all_partitions = partitions()
    marker = next(
        candidate
        for candidate in (new_lead_id() for _ in range(10_000))
        if partition_of(candidate, all_partitions) == partition_of(lead_id, all_partitions)
    )
    hand_over(qualified_record(marker, "MT"), marker)
    settled(one, marker)

    for worker in pair:
        assert ids_of(get(worker, "/deals", lead_id=lead_id)) == {deal_id(lead_id)}
        assert sum(d["lead_id"] == lead_id for d in list_all(f"{worker.url}/deals")) == 1
        again = get(worker, f"/deals/{deal_id(lead_id)}").json()
        # Not opened anew: same opening, the contact kept, still one slot of the rep.
        assert again["opened_at"] == first["opened_at"]
        assert [c["note"] for c in again["contacts"]] == ["intro"]
    assert rep(one, "rep-mt")["open_deals"] == load + 1  # the marker's deal, not a second one


def test_new_deals_go_by_territory_and_capacity_and_the_rest_wait_visibly(pair: Pair) -> None:
    one, other = pair
    first, second = new_lead("IS"), new_lead("IS")
    owners = {settled(one, first)["owner"], settled(other, second)["owner"]}
    assert owners == {"rep-is-1", "rep-is-2"}

    # Both Icelandic reps are full; nobody covers Antarctica.
    full, nowhere = new_lead("IS"), new_lead("AQ")
    for lead_id in (full, nowhere):
        waiting = settled(other, lead_id)
        assert (waiting["owner"], waiting["assignment"]) == (None, "queued")
    for worker in pair:
        queue = ids_of(get(worker, "/deals", owner="unassigned"))
        assert {deal_id(full), deal_id(nowhere)} <= queue
        assert deal_id(first) not in queue
        reps = get(worker, "/reps").json()
        assert reps["unassigned"] >= 2
        loads = {r["rep_id"]: (r["open_deals"], r["available"]) for r in reps["items"]}
        assert loads["rep-is-1"] == loads["rep-is-2"] == (1, 0)
        assert ids_of(get(worker, "/deals", owner="rep-mt")).isdisjoint({deal_id(full), deal_id(nowhere)})

    # Closing a deal frees its rep's slot for the deal that waited.
    freed = settled(one, first)["owner"]
    lost = post(other, f"/deals/{deal_id(first)}/close", {"outcome": "lost", "lost_reason": "no_need"})
    assert lost.status_code == 200, lost.text
    eventually(lambda: get(one, f"/deals/{deal_id(full)}").json()["owner"] == freed)
    assert get(other, f"/deals/{deal_id(full)}").json()["assignment"] == "assigned"
    assert get(one, f"/deals/{deal_id(nowhere)}").json()["owner"] is None
    after = rep(other, freed)
    assert (after["open_deals"], after["available"], after["lost"]) == (1, 0, 1)


def test_illegal_moves_are_refused(pair: Pair) -> None:
    one, other = pair
    lead_id = new_lead("MT")
    settled(one, lead_id)
    path = f"/deals/{deal_id(lead_id)}/stage"

    def move(worker: Worker, stage: str) -> httpx.Response:
        return post(worker, path, {"stage": stage})

    assert move(other, "qualifying").status_code == 200
    backwards = move(one, "prospecting")
    assert backwards.status_code == 409
    assert backwards.json()["detail"][0]["loc"] == ["body", "stage"]
    assert move(other, "presenting").status_code == 200
    assert move(one, "handling_objections").status_code == 200
    objection = post(
        other,
        f"/deals/{deal_id(lead_id)}/objections",
        {"objection": "Too dear", "resolution": "Phased rollout"},
    )
    assert objection.status_code == 200
    assert move(one, "presenting").status_code == 200  # back from objections is allowed
    assert move(other, "won").status_code == 409  # terminal only by closing
    assert move(one, "bogus").status_code == 422

    closed = post(one, f"/deals/{deal_id(lead_id)}/close", {"outcome": "lost", "lost_reason": "timing"})
    assert closed.status_code == 200
    assert move(other, "closing").status_code == 409
    assert post(
        other, f"/deals/{deal_id(lead_id)}/close", {"outcome": "lost", "lost_reason": "timing"}
    ).status_code == (409)

    deal = get(other, f"/deals/{deal_id(lead_id)}").json()
    assert [v["stage"] for v in deal["history"]] == [
        "prospecting",
        "qualifying",
        "presenting",
        "handling_objections",
        "presenting",
        "lost",
    ]
    assert all(v["left_at"] is not None for v in deal["history"][:-1])
    assert deal["objections"][0]["resolution"] == "Phased rollout"
    assert get(one, "/deals/deal-no-such-lead").status_code == 404
    assert get(one, "/deals/not-a-deal-id").status_code == 404


def test_a_won_close_is_priced_from_the_catalogue_and_published_once_with_every_field(pair: Pair) -> None:
    one, other = pair
    lead_id = new_lead("MT", campaign_id="cmp-it-sales")
    settled(other, lead_id)
    deal_path = f"/deals/{deal_id(lead_id)}"
    assert post(one, f"{deal_path}/contacts", {"channel": "meeting"}).status_code == 200
    offer = post(
        other,
        f"{deal_path}/stage",
        {"stage": "closing", "proposal": [{"sku": "LF-CORE", "quantity": 1, "discount_percent": "10"}]},
    )
    assert offer.status_code == 200, offer.text
    assert offer.json()["proposal"]["amount"] == "10800.00"

    def close(worker: Worker, lines: list[dict[str, Any]]) -> httpx.Response:
        return post(worker, f"{deal_path}/close", {"outcome": "won", "lines": lines})

    unknown = close(one, [{"sku": "LF-CORE", "quantity": 1}, {"sku": "NOPE", "quantity": 1}])
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "lines.1.sku"]
    retired = close(other, [{"sku": "LF-LEGACY", "quantity": 1}])
    assert (retired.status_code, retired.json()["detail"][0]["loc"]) == (422, ["body", "lines.0.sku"])
    greedy = close(one, [{"sku": "LF-CORE", "quantity": 1, "discount_percent": "25"}])
    assert (greedy.status_code, greedy.json()["detail"][0]["loc"]) == (
        422,
        ["body", "lines.0.discount_percent"],
    )

    catalog = get(other, "/catalog").json()
    price = {p["sku"]: p["unit_price"] for p in catalog["items"]}
    assert (price["LF-CORE"], price["LF-SEAT"], catalog["max_discount_percent"]) == (
        "12000.00",
        "480.00",
        "20",
    )
    won = close(
        other,
        [{"sku": "LF-CORE", "quantity": 1, "discount_percent": "10"}, {"sku": "LF-SEAT", "quantity": 5}],
    )
    assert won.status_code == 200, won.text
    deal = won.json()
    assert (deal["stage"], deal["amount"], deal["list_amount"], deal["discount_amount"]) == (
        "won",
        "13200.00",
        "14400.00",
        "1200.00",
    )
    assert close(one, [{"sku": "LF-SEAT", "quantity": 1}]).status_code == 409

    # The refused second close announces the first again, identical (the same id:
    # subscribers drop it), so a close stored before a crash lost its event is
    # announced after all; it makes no second close.
    first, again = eventually(lambda: closed_records(lead_id) if len(closed_records(lead_id)) == 2 else None)
    assert again.value == first.value
    record = first
    assert record.headers["content-type"] == CONTENT_TYPE.encode()
    jsonschema.validate(record.value, json.loads((SCHEMAS / "deal.closed" / "v1.json").read_text()))
    envelope, data = record.value, record.value["data"]
    assert (envelope["type"], envelope["subject"], envelope["source"]) == (
        "deal.closed",
        lead_id,
        "/leadflow/sales",
    )
    assert data["deal_id"] == deal_id(lead_id)
    assert data["lead_id"] == lead_id
    assert data["campaign_id"] == "cmp-it-sales"
    assert (data["outcome"], data["lost_reason"]) == ("won", None)
    assert data["owner"] == "rep-mt"
    assert data["customer"]["company"]["name"] == f"Corp {lead_id}"
    assert data["customer"]["contact"]["email"] == f"{lead_id}@example-corp.com"
    assert data["lines"] == [
        {
            "sku": "LF-CORE",
            "name": "Leadflow Core (annual)",
            "quantity": 1,
            "unit_price": "10800.00",
            "list_price": "12000.00",
            "discount_percent": "10",
        },
        {
            "sku": "LF-SEAT",
            "name": "Additional seat (annual)",
            "quantity": 5,
            "unit_price": "480.00",
            "list_price": "480.00",
            "discount_percent": "0",
        },
    ]
    assert (data["amount"], data["currency"]) == ("13200.00", "EUR")
    same_instant = [(data[f], deal[f]) for f in ("opened_at", "first_contact_at", "closed_at")]
    assert all(datetime.fromisoformat(a) == datetime.fromisoformat(b) for a, b in same_instant), same_instant
    assert deal["first_contact_at"] == deal["contacts"][0]["at"]


def test_a_lost_close_is_published_once_with_its_reason(pair: Pair) -> None:
    one, other = pair
    lead_id = new_lead("MT")
    settled(one, lead_id)
    lost = post(
        other, f"/deals/{deal_id(lead_id)}/close", {"outcome": "lost", "lost_reason": "not_a_real_lead"}
    )
    assert lost.status_code == 200, lost.text
    [record] = eventually(lambda: closed_records(lead_id))
    assert closed_records(lead_id) == [record]
    data = record.value["data"]
    assert (data["outcome"], data["lost_reason"], data["owner"], data["lines"], data["amount"]) == (
        "lost",
        "not_a_real_lead",
        "rep-mt",
        [],
        "0.00",
    )
    assert data["first_contact_at"] is not None
    assert data["closed_at"] is not None


def test_follow_up_sla_breaches_are_flagged_listed_and_counted(pair: Pair) -> None:
    one, other = pair
    on_time, never, late = new_lead("MT"), new_lead("MT"), new_lead("MT")
    for lead_id in (on_time, never, late):
        assert settled(one, lead_id)["follow_up"]["status"] == "pending"
    called = post(other, f"/deals/{deal_id(on_time)}/contacts", {"channel": "call"})
    assert called.json()["follow_up"]["status"] == "met"

    # Eleven minutes pass on both workers: past the ten-minute SLA.
    for worker in pair:
        moved = post(worker, "/clock", {"seconds": SLA_SECONDS + 60})
        assert moved.status_code == 200, moved.text

    for worker in pair:
        breached = ids_of(get(worker, "/deals", sla="breached"))
        assert {deal_id(never), deal_id(late)} <= breached
        assert deal_id(on_time) not in breached
        assert deal_id(on_time) in ids_of(get(worker, "/deals", sla="met"))
        waiting = get(worker, f"/deals/{deal_id(never)}").json()["follow_up"]
        assert (waiting["status"], waiting["overdue"]) == ("breached", True)

    # Contact at last: still a breach (it came late), no longer overdue.
    reached = post(one, f"/deals/{deal_id(late)}/stage", {"stage": "qualifying"}).json()["follow_up"]
    assert (reached["status"], reached["overdue"]) == ("breached", False)

    def counted() -> bool:
        listed = len(list_all(f"{one.url}/deals", {"sla": "breached"}))
        overdue = [
            d for d in list_all(f"{other.url}/deals", {"sla": "breached"}) if d["follow_up"]["overdue"]
        ]
        metric = sum(
            value for worker in pair for _, value in gauge(worker, "leadflow_sales_sla_breached_deals")
        )
        overdue_metric = sum(
            value for worker in pair for _, value in gauge(worker, "leadflow_sales_sla_overdue_deals")
        )
        return metric == listed and overdue_metric == len(overdue)

    eventually(counted)


def test_two_workers_answer_for_every_deal_whichever_owns_it(pair: Pair) -> None:
    one, other = pair
    all_partitions = partitions()
    by_partition: dict[int, str] = {}
    while len(by_partition) < len(all_partitions):
        candidate = new_lead_id()
        by_partition.setdefault(partition_of(candidate, all_partitions), candidate)
    leads = list(by_partition.values())
    for lead_id in leads:
        hand_over(qualified_record(lead_id, "MT"), lead_id)
    expected = {deal_id(lead_id) for lead_id in leads}

    for lead_id in leads:
        settled(one, lead_id)
    for worker in pair:
        for lead_id in leads:
            deal = get(worker, f"/deals/{deal_id(lead_id)}")
            assert deal.status_code == 200, deal.text
            assert (deal.json()["lead_id"], deal.json()["owner"]) == (lead_id, "rep-mt")
            assert ids_of(get(worker, "/deals", lead_id=lead_id)) == {deal_id(lead_id)}
        assert expected <= ids_of(get(worker, "/deals", owner="rep-mt", stage="prospecting"))

    # Each worker holds some of these deals, and no deal is held twice.
    held = [{d["deal_id"] for d in list_all(f"{w.url}/deals", headers=LOCAL_ONLY)} for w in pair]
    mine, theirs = (h & expected for h in held)
    assert mine
    assert theirs
    assert mine | theirs == expected
    assert not mine & theirs

    # A write sent to the worker that does not hold the deal is applied by the one that does.
    for lead_id in leads:
        moved = post(other, f"/deals/{deal_id(lead_id)}/stage", {"stage": "qualifying"})
        assert moved.status_code == 200, moved.text
    for worker in pair:
        assert expected <= ids_of(get(worker, "/deals", stage="qualifying"))
        assert expected.isdisjoint(ids_of(get(worker, "/deals", stage="prospecting")))
    assert get(one, "/reps").json() == get(other, "/reps").json()


def test_each_desk_answers_for_its_pool_from_whichever_worker(pair: Pair) -> None:
    one, other = pair
    reps = get(one, "/reps").json()
    assert {r["rep_id"]: r["desk"] for r in reps["items"]} == {
        "rep-is-1": "desk:IS",
        "rep-is-2": "desk:IS",
        "rep-mt": "desk:MT",
    }
    desks = {key: get(w, f"/desks/{key}") for key in ("desk:IS", "desk:MT", "desk:*") for w in pair}
    assert all(d.status_code == 200 for d in desks.values()), {k: d.text for k, d in desks.items()}
    views = {key: d.json() for key, d in desks.items()}
    assert [r["rep_id"] for r in views["desk:IS"]["reps"]] == ["rep-is-1", "rep-is-2"]
    assert views["desk:*"]["reps"] == []  # Antarctica's deal waits at the desk of no rep
    assert views["desk:*"]["unassigned"] >= 1
    assert reps["unassigned"] == sum(v["unassigned"] for v in views.values())
    assert get(other, "/desks/desk:NOPE").status_code == 404


def test_metrics_report_the_pipeline_and_each_desk_once(pair: Pair) -> None:
    # Runs after the closes above. Each worker reports the desks it holds.
    closed = {
        (labels["desk"], labels["outcome"]): value
        for w in pair
        for labels, value in gauge(w, "leadflow_sales_desk_closed_deals")
    }
    won = sum(v for (_, outcome), v in closed.items() if outcome == "won")
    lost = sum(v for (_, outcome), v in closed.items() if outcome == "lost")
    assert won / (won + lost) == get(pair[0], "/reps").json()["win_rate"]
    rates = [labels["desk"] for w in pair for labels, _ in gauge(w, "leadflow_sales_win_rate_ratio")]
    assert sorted(rates) == sorted(set(rates))
    assert "desk:MT" in rates
    capacities = [{s["rep"]: v for s, v in gauge(w, "leadflow_sales_rep_capacity_deals")} for w in pair]
    assert not capacities[0].keys() & capacities[1].keys()
    assert capacities[0] | capacities[1] == {"rep-is-1": 1, "rep-is-2": 1, "rep-mt": 100}
    for worker in pair:
        stages = {labels["stage"] for labels, _ in gauge(worker, "leadflow_sales_open_deals")}
        assert stages == {"prospecting", "qualifying", "presenting", "handling_objections", "closing"}
        moves = gauge(worker, "leadflow_sales_time_in_stage_seconds_count")
        assert all(set(labels) == {"stage"} for labels, _ in moves)
    assert sum(v for w in pair for _, v in gauge(w, "leadflow_sales_time_in_stage_seconds_count")) > 0
