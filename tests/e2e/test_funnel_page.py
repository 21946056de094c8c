"""The funnel page in a real browser: Debian's Chromium, driven by Playwright, reads
the running services while this test sends leads and closes deals. The numbers it
draws (tables and the charts' data) must be the API's, and follow it live."""

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.deploy.chart import tool
from tests.e2e.test_lead_to_order import capture, deal_of
from tests.system import ISSUER, ROOT, Worker, api, eventually

# The README's picture is refreshed on demand (LEADFLOW_UPDATE_SCREENSHOT=1), so a
# test run leaves the working tree as it found it.
SCREENSHOT = ROOT / ("docs" if os.environ.get("LEADFLOW_UPDATE_SCREENSHOT") else ".cache") / "funnel.png"
# A laptop's screen.
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Path(tool("install-chromium.sh"))
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        yield launched
        launched.close()


class Watched:
    """A page and the JavaScript errors it reported."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


def funnel_api(marketing: Worker, campaign_id: str) -> dict[str, Any]:
    answer = api.get(f"{marketing.url}/funnel", params={"campaign_id": campaign_id}, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def drawn(page: Page) -> dict[str, Any]:
    """What the page shows now: the step table, the funnel chart's bars, the KPIs,
    the campaign row, the forecast chart and table."""
    result: dict[str, Any] = page.evaluate(
        """() => {
          const cell = (sel) => [...document.querySelectorAll(sel)];
          const chartData = (id) => {
            const chart = Chart.getChart(document.getElementById(id));
            return chart ? chart.data.datasets.map((d) => d.data.map(Number)) : null;
          };
          return {
            steps: Object.fromEntries(cell("td[data-step]").map((td) => [td.dataset.step, td.textContent])),
            bars: chartData("funnel-chart"),
            captured: document.getElementById("kpi-captured").textContent,
            won: document.getElementById("kpi-won").textContent,
            notReal: document.getElementById("kpi-not-real").textContent,
            campaign: Object.fromEntries(cell("td[data-campaign]").map(
              (td) => [td.dataset.campaign + "/" + td.dataset.field, td.textContent])),
            lost: cell("#lost-reasons li").map((li) => li.dataset.reason + "=" + li.textContent),
            forecast: chartData("forecast-chart"),
            attribution: chartData("attribution-chart"),
            forecastRows: Object.fromEntries(
              cell("td[data-period]").map((td) => [td.dataset.period, td.textContent])),
            updated: document.body.dataset.updated || null,
          };
        }"""
    )
    return result


def new_campaign(marketing: Worker, name: str, channel: str, budget: str) -> str:
    created = api.post(
        f"{marketing.url}/campaigns",
        json={
            "name": f"{name} {uuid.uuid4().hex[:6]}",
            "channel": channel,
            "budget": {"amount": budget, "currency": "EUR"},
            "starts_on": "2026-01-01",
            "ends_on": "2027-12-31",
        },
        timeout=20,
    )
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["campaign_id"]
    return campaign_id


def counts(funnel: dict[str, Any]) -> dict[str, int]:
    return {step["step"]: step["count"] for step in funnel["steps"]}


def page_matches(page: Page, marketing: Worker, campaign_id: str) -> dict[str, Any] | None:
    """The API's funnel if the page draws exactly it now, else None."""
    expected = funnel_api(marketing, campaign_id)
    shown = drawn(page)
    steps = counts(expected)
    if shown["bars"] != [[steps[s["step"]] for s in expected["steps"]]]:
        return None
    if shown["steps"] != {name: f"{count:,}" for name, count in steps.items()}:
        return None
    return expected


def test_the_funnel_page_draws_the_api_s_figures_and_follows_them_live(
    system: dict[str, Worker], browser: Browser
) -> None:
    marketing, sales, orders = system["marketing"], system["sales"], system["orders"]
    campaign_id = new_campaign(marketing, "Expo", "event", "10000.00")
    webinar_id = new_campaign(marketing, "Webinar", "email", "2000.00")

    context = browser.new_context(viewport=VIEWPORT)
    watched = Watched(context.new_page())
    page = watched.page
    token = ISSUER.token(subject="browser", scopes=["campaigns:read", "deals:read"])
    page.goto(f"{marketing.url}/funnel/page/?campaign_id={campaign_id}#token={token}")
    # The token leaves the address at once (it is kept in the tab's sessionStorage).
    assert "token" not in page.url
    page.wait_for_function("document.body.dataset.updated")
    assert eventually(lambda: page_matches(page, marketing, campaign_id))["steps"][0]["count"] == 0

    # Four leads: three ask for a demo (qualified at once, deals open), one only browses.
    hot = [
        capture(marketing, f"hot-{uuid.uuid4().hex[:8]}@acme-industries.com", campaign_id=campaign_id)
        for _ in range(3)
    ]
    capture(
        marketing, f"cool-{uuid.uuid4().hex[:8]}@acme-industries.com", campaign_id=campaign_id, intent=None
    )

    def opened_and_drawn() -> dict[str, Any] | None:
        funnel = page_matches(page, marketing, campaign_id)
        return funnel if funnel and counts(funnel)["deal_opened"] == 3 else None

    funnel = eventually(opened_and_drawn, timeout=60)
    assert (counts(funnel)["captured"], counts(funnel)["qualified"]) == (4, 3)
    assert drawn(page)["captured"] == "4"

    # Two deals move with a proposal (the forecast grows); one is then won and becomes
    # an order, the other stays open. The third is sent back as not a real lead.
    before = api.get(f"{sales.url}/forecast", timeout=10).json()
    won_deal, bad_deal, open_deal = (deal_of(sales, lead["lead_id"]) for lead in hot)
    for deal, stage, cores in ((won_deal, "closing", 1), (open_deal, "presenting", 2)):
        moved = api.post(
            f"{sales.url}/deals/{deal['deal_id']}/stage",
            json={"stage": stage, "proposal": [{"sku": "LF-CORE", "quantity": cores}]},
            timeout=20,
        )
        assert moved.status_code == 200, moved.text
    forecast = api.get(f"{sales.url}/forecast", timeout=10).json()
    grown = sum(Decimal(p["pipeline"]) for p in forecast["periods"]) - sum(
        Decimal(p["pipeline"]) for p in before["periods"]
    )
    assert grown == Decimal("36000.00")

    def forecast_drawn() -> bool:
        now = api.get(f"{sales.url}/forecast", timeout=10).json()
        shown = drawn(page)
        weighted = {p["period"]: Decimal(p["weighted"]) for p in now["periods"]}
        bars = shown["forecast"]
        return bars is not None and sum(map(sum, bars)) == pytest.approx(float(sum(weighted.values())))

    eventually(forecast_drawn, timeout=30)

    # The lead about to be won attends the webinar campaign's webinar: a second touch.
    touched = api.post(
        f"{marketing.url}/leads/{hot[0]['lead_id']}/activities",
        json={"type": "webinar_attended", "campaign_id": webinar_id},
        timeout=20,
    )
    assert touched.status_code == 202, touched.text

    for deal, body in (
        (won_deal, {"outcome": "won", "lines": [{"sku": "LF-CORE", "quantity": 1}]}),
        (bad_deal, {"outcome": "lost", "lost_reason": "not_a_real_lead"}),
    ):
        closed = api.post(f"{sales.url}/deals/{deal['deal_id']}/close", json=body, timeout=20)
        assert closed.status_code == 200, closed.text

    # The order is confirmed and fulfilled.
    def order_made() -> list[dict[str, Any]]:
        found = api.get(f"{orders.url}/orders", params={"deal_id": won_deal["deal_id"]}, timeout=10).json()
        items: list[dict[str, Any]] = found["items"]
        return items

    [made] = eventually(order_made)
    for status in ("confirmed", "fulfilled"):
        moved = api.post(
            f"{orders.url}/orders/{made['order_id']}/status", json={"status": status}, timeout=20
        )
        assert moved.status_code == 200, moved.text

    def closed_and_drawn() -> dict[str, Any] | None:
        funnel = page_matches(page, marketing, campaign_id)
        done = funnel and (counts(funnel)["won"], counts(funnel)["ordered"], counts(funnel)["fulfilled"]) == (
            1,
            1,
            1,
        )
        return funnel if done else None

    funnel = eventually(closed_and_drawn, timeout=60)
    steps = counts(funnel)
    # Stages count deals that reached them or beyond: the won one passed them all.
    assert [steps[f"stage:{s}"] for s in ("prospecting", "qualifying", "presenting", "closing")] == [
        3,
        2,
        2,
        1,
    ]
    assert funnel["lost_reasons"] == {"not_a_real_lead": 1}
    assert funnel["handover"]["not_a_real_lead"] == 1
    shown = drawn(page)
    assert shown["won"] == "1"
    assert shown["notReal"] == "1 · 50.0 %"
    assert shown["campaign"] == {f"{campaign_id}/captured": "4", f"{campaign_id}/won": "1"}
    assert "not_a_real_lead=not_a_real_lead: 1" in shown["lost"]
    [row] = funnel["campaigns"]
    assert row["revenue"] == [{"amount": "12000.00", "currency": "EUR"}]
    assert row["roi"] == "0.2000"
    order = api.get(f"{orders.url}/orders", params={"deal_id": won_deal["deal_id"]}, timeout=10).json()
    assert [o["total"] for o in order["items"]] == ["12000.00"]

    # Attribution, linear: the won 12 000.00 in halves between the two campaigns it touched.
    page.select_option("#model", "linear")

    def attribution_drawn() -> dict[str, Any] | None:
        view = api.get(f"{marketing.url}/attribution", params={"model": "linear"}, timeout=10).json()
        shown = drawn(page)
        mine = {c["campaign_id"]: c["revenue"] for c in view["campaigns"]}
        if mine.get(webinar_id) != [{"amount": "6000.00", "currency": "EUR"}]:
            return None
        [total] = view["total"]
        expected = [Decimal((r or [{"amount": "0"}])[0]["amount"]) for r in mine.values()]
        if shown["attribution"] != [[float(x) for x in expected]]:
            return None
        assert sum(expected) == Decimal(total["amount"])  # every model adds up to the won revenue
        return view

    view = eventually(attribution_drawn, timeout=30)
    assert {c["campaign_id"]: c["revenue"] for c in view["campaigns"]}[campaign_id] == [
        {"amount": "6000.00", "currency": "EUR"}
    ]
    linear = api.get(
        f"{marketing.url}/campaigns/{webinar_id}/performance", params={"attribution": "linear"}, timeout=10
    ).json()
    assert (linear["attributed_revenue"], linear["attributed_roi"], linear["revenue"]) == (
        [{"amount": "6000.00", "currency": "EUR"}],
        "2.0000",  # (6000 - 2000) / 2000
        [],  # first captured through the expo: none of its own by first touch
    )

    eventually(forecast_drawn, timeout=30)  # the open deal's proposal, weighted
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert watched.errors == []
    context.close()
