"""Lead capture on a real marketing worker and the real broker: channels, one lead
per person under concurrent captures, refusals that write nothing, engagement
that qualifies a nurtured lead once, and the metrics of it all."""

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx

from tests.integration.marketing.conftest import (
    capture,
    create_campaign,
    engage,
    lead,
    lead_body,
    lead_id_of,
    metric,
    performance,
)
from tests.system import Worker, api, eventually, read_topic, unique_email


def created_records(lead_id: str) -> list[dict[str, Any]]:
    return [r.value for r in read_topic("lead.created") if r.key == lead_id]


def qualified_records(lead_id: str) -> list[dict[str, Any]]:
    return [r.value for r in read_topic("lead.qualified") if r.key == lead_id]


def test_captures_from_every_kind_of_channel(system: dict[str, Worker]) -> None:
    url = system["marketing"].url
    campaign_id = create_campaign(url, "Spring mix")
    cases = {
        # channel: (consent, intent, expected status)
        "web": (True, "demo_request", "qualified"),
        "email": (True, None, "nurturing"),
        "event": (False, None, "disqualified"),  # a badge scan without consent is kept, not handed over
        "telemarketing": (True, "contact_sales", "qualified"),
        "referral": (True, None, "nurturing"),
        "direct_mail": (True, None, "nurturing"),
    }
    captured = {}
    for channel, (consent, intent, status) in cases.items():
        accepted = capture(
            url,
            unique_email(channel),
            channel=channel,
            campaign_id=campaign_id,
            consent=consent,
            intent=intent,
        )
        assert (accepted["status"], accepted["duplicate"]) == (status, False), channel
        captured[channel] = accepted["lead_id"]
    for channel, lead_id in captured.items():
        found = lead(url, lead_id)
        assert (found["channel"], found["campaign_id"]) == (channel, campaign_id)
        assert found["rules_version"].startswith("default-")
        [record] = eventually(partial(created_records, lead_id))
        assert record["data"]["channel"] == channel
        assert record["data"]["campaign_id"] == campaign_id
    assert "no_consent" in lead(url, captured["event"])["disqualified_by"]
    listed = api.get(f"{url}/leads", params={"campaign_id": campaign_id}, timeout=10).json()["items"]
    assert {i["lead_id"] for i in listed} == set(captured.values())


def test_ten_concurrent_captures_of_one_person_make_one_lead(system: dict[str, Worker]) -> None:
    url = system["marketing"].url
    email = unique_email("crowd")
    local, domain = email.split("@")
    # The same person as ten forms would write them.
    spellings = [email, email.upper(), f" {email} ", f"{local}+expo@{domain}"] * 3

    def post(written: str) -> httpx.Response:
        return api.post(f"{url}/leads", json=lead_body(written.strip()), timeout=30)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(post, spellings[:10]))
    assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert {b["lead_id"] for b in bodies} == {lead_id_of(email)}
    assert sorted(b["duplicate"] for b in bodies) == [False] + [True] * 9
    lead_id = bodies[0]["lead_id"]
    assert lead(url, lead_id)["captures"] == 10
    # Exactly one lead.created, whichever capture came first.
    eventually(lambda: created_records(lead_id))
    assert len(created_records(lead_id)) == 1


def test_bad_input_is_refused_with_its_reasons_and_nothing_is_written(system: dict[str, Worker]) -> None:
    url = system["marketing"].url
    campaign_id = create_campaign(url, "Refusals")
    refused = {
        "not_an_email": (lead_body("ana.at.acme.io"), [("contact", "email")]),
        "no_consent_on_a_form": (
            lead_body(unique_email("form"), channel="web", consent=False, campaign_id=campaign_id),
            [("consent",)],
        ),
        "unknown_campaign": (
            lead_body(unique_email("lost"), campaign_id="no-such-campaign"),
            [("campaign_id",)],
        ),
        "too_long": (
            lead_body(unique_email("long"), company={"name": "A" * 201, "country": "Deutschland"}),
            [("company", "name"), ("company", "country")],
        ),
        "everything_at_once": (
            lead_body(unique_email("all"), channel="social", consent=False, campaign_id="nope"),
            [("campaign_id",), ("consent",)],
        ),
    }
    for case, (body, fields) in refused.items():
        answer = api.post(f"{url}/leads", json=body, timeout=20)
        assert answer.status_code == 422, (case, answer.text)
        detail = answer.json()["detail"]
        assert [tuple(d["loc"][1:]) for d in detail] == fields, case
        assert all(d["msg"] for d in detail), case
        if "@" in body["contact"]["email"]:
            lead_id = lead_id_of(body["contact"]["email"])
            assert api.get(f"{url}/leads/{lead_id}", timeout=10).status_code == 404, case
            assert created_records(lead_id) == [], case
    consent_reason = api.post(f"{url}/leads", json=refused["no_consent_on_a_form"][0], timeout=20).json()
    assert (
        consent_reason["detail"][0]["msg"] == "consent is required for leads captured through the web channel"
    )
    # The campaign counted none of them: its first real lead is its first lead.
    capture(url, unique_email("real"), campaign_id=campaign_id)
    eventually(lambda: performance(url, campaign_id)["leads"] == 1)
    assert performance(url, campaign_id)["leads"] == 1


def test_a_nurtured_lead_qualifies_once_after_enough_engagement(system: dict[str, Worker]) -> None:
    url = system["marketing"].url
    accepted = capture(url, unique_email("nurture"))
    lead_id = accepted["lead_id"]
    assert accepted["status"] == "nurturing"
    assert lead(url, lead_id)["score"] == 33  # software 15 + 120 staff 10 + manager 8
    statuses = [engage(url, lead_id, a)["status"] for a in ("email_click", "content_download", "email_open")]
    assert statuses == ["nurturing"] * 3  # 33 + 5 + 10 + 2 = 50 < 60
    assert engage(url, lead_id, "webinar_attended")["status"] == "qualified"  # 65
    assert engage(url, lead_id, "pricing_page_view")["status"] == "qualified"
    found = lead(url, lead_id)
    assert found["qualified_at"] is not None
    engagement = next(r for r in found["reasons"] if r["rule"] == "engagement")
    assert engagement["points"] == 32
    [record] = eventually(lambda: qualified_records(lead_id))
    assert record["data"]["score"] == 65
    assert record["data"]["threshold"] == 60
    assert {r["rule"] for r in record["data"]["reasons"]} == {
        "fit.industry",
        "fit.company_size",
        "fit.title.manager",
        "engagement",
    }
    # Sales got its handover (and only one): a deal was opened from it.
    sales = system["sales"].url
    eventually(lambda: api.get(f"{sales}/deals", params={"lead_id": lead_id}, timeout=10).json()["items"])
    assert len(qualified_records(lead_id)) == 1


def test_metrics_count_captures_duplicates_refusals_and_decisions(system: dict[str, Worker]) -> None:
    url = system["marketing"].url
    before = {
        "captured": metric(
            url, "leadflow_marketing_leads_captured_total", channel="partner", campaign_id="none"
        ),
        "duplicates": metric(url, "leadflow_marketing_duplicate_captures_total", channel="partner"),
        "refused": metric(url, "leadflow_marketing_captures_refused_total", reason="consent_required"),
        "disqualified": metric(url, "leadflow_marketing_leads_disqualified_total", reason="free_mail_domain"),
        "scored": metric(url, "leadflow_marketing_lead_score_count", status="disqualified"),
    }
    email = unique_email("metrics", domain="gmail.com")
    capture(url, email, channel="partner")
    capture(url, email, channel="partner")
    assert (
        api.post(f"{url}/leads", json=lead_body(email, channel="web", consent=False), timeout=20).status_code
        == 422
    )
    after = {
        "captured": metric(
            url, "leadflow_marketing_leads_captured_total", channel="partner", campaign_id="none"
        ),
        "duplicates": metric(url, "leadflow_marketing_duplicate_captures_total", channel="partner"),
        "refused": metric(url, "leadflow_marketing_captures_refused_total", reason="consent_required"),
        "disqualified": metric(url, "leadflow_marketing_leads_disqualified_total", reason="free_mail_domain"),
        "scored": metric(url, "leadflow_marketing_lead_score_count", status="disqualified"),
    }
    assert {k: after[k] - before[k] for k in before} == {
        "captured": 1,
        "duplicates": 1,
        "refused": 1,
        # Counted when the lead became disqualified, not again at the duplicate.
        "disqualified": 1,
        "scored": 1,
    }
    text = api.get(f"{url}/metrics", timeout=10).text
    assert email not in text
    assert lead_id_of(email) not in text
