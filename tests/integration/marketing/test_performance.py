"""Campaign performance on the real system: a scenario worked out by hand, with
sales' outcomes arriving on deal.closed (put there directly, as sales would,
once of them twice); and a CSV list import through the importer command."""

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from schemas.events import LostReason, Outcome
from tests.integration.marketing.conftest import (
    capture,
    close_deal,
    create_campaign,
    engage,
    lead,
    performance,
)
from tests.system import ISSUER, ROOT, Worker, api, eventually, unique_email

EXAMPLE = ROOT / "services" / "marketing" / "examples" / "expo-2026.csv"


def settles_at(url: str, campaign_id: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The campaign's performance once it shows `expected` (deals close asynchronously)."""

    def matches() -> dict[str, Any] | None:
        found = performance(url, campaign_id)
        return found if {k: found[k] for k in expected} == expected else None

    try:
        result: dict[str, Any] = eventually(matches)
    except AssertionError:
        assert {k: performance(url, campaign_id)[k] for k in expected} == expected
        raise
    return result


def test_campaign_performance_closes_the_loop_as_computed_by_hand(system: dict[str, Worker]) -> None:
    url = system["marketing"].url
    campaign_id = create_campaign(
        url, "Expo 2026", budget="10000.00", target={"industries": ["Software"], "countries": ["DE"]}
    )
    in_campaign = {"campaign_id": campaign_id}
    # Five leads:
    winner_email = unique_email("won")
    won = capture(url, winner_email, intent="demo_request", **in_campaign)["lead_id"]
    bogus = capture(url, unique_email("bogus"), intent="contact_sales", **in_campaign)["lead_id"]
    slow = capture(url, unique_email("slow"), **in_campaign)  # target fit 20+10, size 10, manager 8 = 48
    free_mail = capture(url, unique_email("free", domain="gmail.com"), **in_campaign)
    scanned_email = unique_email("scan")
    scanned = capture(url, scanned_email, consent=False, **in_campaign)
    assert [slow["status"], free_mail["status"], scanned["status"]] == [
        "nurturing",
        "disqualified",
        "disqualified",
    ]
    # ... the nurtured one qualifies on engagement (48 + 10 + 5 = 63) ...
    engage(url, slow["lead_id"], "content_download")
    assert engage(url, slow["lead_id"], "email_click")["status"] == "qualified"
    # ... the scanned badge comes back with consent (no longer disqualified), and
    # the winner is captured again: two duplicate captures, still five leads.
    assert capture(url, scanned_email, **in_campaign)["duplicate"] is True
    assert lead(url, scanned["lead_id"])["status"] == "nurturing"
    assert capture(url, winner_email, **in_campaign)["duplicate"] is True

    before_deals = settles_at(
        url,
        campaign_id,
        {
            "leads": 5,
            "duplicate_captures": 2,
            "qualified": 3,
            "disqualified": 1,
            "deals_won": 0,
            "deals_lost": 0,
        },
    )
    assert before_deals["spend"] == {"amount": "10000.00", "currency": "EUR"}
    assert before_deals["cost_per_lead"] == {"amount": "2000.00", "currency": "EUR"}  # 10000 / 5
    assert before_deals["cost_per_won_deal"] is None
    assert before_deals["roi"] == "-1.0000"  # all spent, nothing back yet
    assert before_deals["lead_to_mql"] == "0.6000"  # 3 / 5
    assert before_deals["mql_to_won"] == "0.0000"

    # Sales' outcomes: won 1 x 9000.00 + 5 x 1080.00 = 14400.00 EUR (delivered
    # twice), lost as not a real lead, lost on budget.
    sold = (("LF-CORE", 1, "9000.00"), ("LF-SEAT", 5, "1080.00"))
    close_deal(won, campaign_id, Outcome.WON, lines=sold)
    close_deal(won, campaign_id, Outcome.WON, lines=sold)
    close_deal(bogus, campaign_id, Outcome.LOST, lost_reason=LostReason.NOT_A_REAL_LEAD)
    close_deal(slow["lead_id"], campaign_id, Outcome.LOST, lost_reason=LostReason.NO_BUDGET)

    after = settles_at(url, campaign_id, {"deals_won": 1, "deals_lost": 2})
    assert after | {"updated_at": None} == {
        "campaign_id": campaign_id,
        "name": "Expo 2026",
        "channel": "event",
        "spend": {"amount": "10000.00", "currency": "EUR"},
        "leads": 5,
        "duplicate_captures": 2,
        "qualified": 3,
        "disqualified": 1,
        "deals_won": 1,
        "deals_lost": 2,
        "not_a_real_lead": 1,
        "revenue": [{"amount": "14400.00", "currency": "EUR"}],
        "cost_per_lead": {"amount": "2000.00", "currency": "EUR"},
        "cost_per_won_deal": {"amount": "10000.00", "currency": "EUR"},
        "roi": "0.4400",  # (14400 - 10000) / 10000
        "roi_note": None,
        "lead_to_mql": "0.6000",
        "mql_to_won": "0.3333",  # 1 / 3
        # First touch (the default) credits the campaign each lead was first captured through.
        "attribution": "first_touch",
        "attributed_revenue": [{"amount": "14400.00", "currency": "EUR"}],
        "attributed_roi": "0.4400",
        "attributed_roi_note": None,
        "updated_at": None,
    }
    assert [lead(url, i)["status"] for i in (won, bogus, slow["lead_id"])] == ["won", "recycled", "lost"]


def test_revenue_in_another_currency_than_the_budget_leaves_roi_undefined(system: dict[str, Worker]) -> None:
    url = system["marketing"].url
    campaign_id = create_campaign(url, "US webinar", budget="2000.00", currency="USD")
    lead_id = capture(url, unique_email("eur"), intent="demo_request", campaign_id=campaign_id)["lead_id"]
    close_deal(lead_id, campaign_id, Outcome.WON, lines=(("LF-CORE", 1, "9000.00"),), currency="EUR")
    result = settles_at(url, campaign_id, {"deals_won": 1})
    assert result["revenue"] == [{"amount": "9000.00", "currency": "EUR"}]
    assert result["roi"] is None
    assert "EUR" in result["roi_note"]
    assert "USD" in result["roi_note"]
    assert result["cost_per_won_deal"] == {"amount": "2000.00", "currency": "USD"}


def test_an_unknown_campaign_has_no_performance(system: dict[str, Worker]) -> None:
    answer = api.get(f"{system['marketing'].url}/campaigns/no-such-campaign/performance", timeout=10)
    assert answer.status_code == 404
    assert "no-such-campaign" in answer.json()["detail"][0]["msg"]


def test_a_list_import_brings_in_good_rows_and_reports_bad_ones(
    system: dict[str, Worker], tmp_path: Path
) -> None:
    url = system["marketing"].url
    campaign_id = create_campaign(url, "Expo 2026 badge scans", budget="5000.00")
    report = tmp_path / "errors.csv"
    listing = tmp_path / "expo.csv"
    # The shipped example with its people new to this run, plus a row of its own
    # channel: a web form without consent.
    tag = unique_email("run").split("@")[0].replace(".", "")
    header, *rows = EXAMPLE.read_text().splitlines()
    lines = [f"{header},channel", *(f"{_retag(row, tag)}," for row in rows)]
    lines.append(f"nora.{tag}@fjord-retail.no,Nora Lie,CMO,,Fjord Retail,Retail,40,NO,no,,web")
    listing.write_text("\n".join(lines) + "\n")

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.marketing.importer",
            str(listing),
            "--url",
            url,
            "--campaign",
            campaign_id,
            "--report",
            str(report),
        ],
        cwd=ROOT,
        env={**os.environ, "LEADFLOW_TOKEN": ISSUER.token(subject="list-import", scopes=["leads:write"])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "12 rows: 8 new leads" in done.stderr
    assert "1 already known" in done.stderr
    with report.open() as found:
        errors = [(r["row"], r["field"]) for r in csv.DictReader(found)]
    assert errors == [("11", "email"), ("12", "size"), ("13", "consent")]
    # The good rows are leads of the campaign, the duplicate row engagement on one of them.
    settles_at(url, campaign_id, {"leads": 8, "duplicate_captures": 1})
    listed = api.get(f"{url}/leads", params={"campaign_id": campaign_id}, timeout=10).json()["items"]
    assert len(listed) == 8
    assert {i["channel"] for i in listed} == {"event"}
    by_status = {
        s: sum(1 for i in listed if i["status"] == s) for s in ("qualified", "nurturing", "disqualified")
    }
    # Three hand-raisers qualify; the student's gmail and the badge scanned without
    # consent are kept but disqualified; the rest are nurtured.
    assert by_status == {"qualified": 3, "nurturing": 3, "disqualified": 2}


def _retag(row: str, tag: str) -> str:
    """The row's person made new to this test run; duplicates stay duplicates."""
    email, rest = row.split(",", 1)
    local, _, domain = email.rpartition("@")
    base, plus, extension = local.partition("+")
    return f"{base}.{tag}{plus}{extension}@{domain},{rest}"
