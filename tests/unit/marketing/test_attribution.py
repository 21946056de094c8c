"""Attribution of won revenue across the campaigns a lead touched: each model's
credits, to the cent, and every model adding up to the won revenue exactly."""

from collections import Counter
from collections.abc import Hashable
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from schemas.events import Intent
from services.marketing.domain.activities import Activity, ActivityType
from services.marketing.domain.attribution import (
    NO_CAMPAIGN,
    Model,
    Touches,
    credited,
    split,
    touched,
    weights,
)
from services.marketing.domain.leads import Lead, LeadStatus, capture, record_activity
from services.marketing.domain.performance import contribution, counts_of
from services.marketing.domain.rules import RuleSet
from tests.unit.marketing.conftest import NOW, campaign
from tests.unit.marketing.conftest import capture as a_capture


def journey(*campaigns: str) -> Touches:
    touches = None
    for campaign_id in campaigns:
        touches = touched(touches, campaign_id)
    assert touches is not None
    return touches


# first: expo, then webinar twice, then ads, last: expo again (five touches).
FIVE = journey("expo", "webinar", "webinar", "ads", "expo")


def test_touches_keep_the_first_the_last_and_the_count_per_campaign() -> None:
    assert Touches(first="expo", last="expo", counts={"expo": 2, "webinar": 2, "ads": 1}) == FIVE
    assert FIVE.total == 5


def test_each_model_s_weights_by_hand() -> None:
    assert weights(FIVE, Model.FIRST_TOUCH) == {"expo": 1}
    assert weights(journey("expo", "ads"), Model.LAST_TOUCH) == {"ads": 1}
    assert weights(FIVE, Model.LINEAR) == {
        "expo": Fraction(2, 5),
        "webinar": Fraction(2, 5),
        "ads": Fraction(1, 5),
    }
    # U-shaped: 40 % first + 40 % last (both expo), the middle three touches share 20 %.
    assert weights(FIVE, Model.U_SHAPED) == {
        "expo": Fraction(4, 5),
        "webinar": Fraction(2, 15),
        "ads": Fraction(1, 15),
    }
    assert weights(journey("expo"), Model.U_SHAPED) == {"expo": 1}
    assert weights(journey("expo", "ads"), Model.U_SHAPED) == {"expo": Fraction(1, 2), "ads": Fraction(1, 2)}


@pytest.mark.parametrize("model", list(Model))
@pytest.mark.parametrize("amount", ["14400.00", "100.00", "0.01", "999.99", "10000.03"])
def test_a_lead_s_credits_add_up_to_its_amount_to_the_cent(model: Model, amount: str) -> None:
    shares = credited(FIVE, Decimal(amount), model)
    assert sum(shares.values()) == Decimal(amount)
    assert all(value == value.quantize(Decimal("0.01")) for value in shares.values())


def test_the_cents_left_by_rounding_go_to_the_largest_remainders() -> None:
    # 100.00 in thirds: 33.33 each and one cent left, to the first in id order on a tie.
    assert split(Decimal("100.00"), {"a": Fraction(1, 3), "b": Fraction(1, 3), "c": Fraction(1, 3)}) == {
        "a": Decimal("33.34"),
        "b": Decimal("33.33"),
        "c": Decimal("33.33"),
    }
    # U-shaped 14400.00 over FIVE: 11520.00, 1920.00, 960.00 exactly.
    assert credited(FIVE, Decimal("14400.00"), Model.U_SHAPED) == {
        "expo": Decimal("11520.00"),
        "webinar": Decimal("1920.00"),
        "ads": Decimal("960.00"),
    }


def test_a_lead_s_touches_come_from_its_captures_and_its_campaign_activities(rules: RuleSet) -> None:
    lead = capture(None, "l1", a_capture(campaign_id=None), None, rules, NOW, "c1").lead
    lead = capture(lead, "l1", a_capture(campaign_id="expo"), campaign(), rules, NOW, "c2").lead
    later = NOW + timedelta(hours=1)
    lead = record_activity(lead, Activity(type=ActivityType.PAGE_VIEW, at=later), rules, later, "c3").lead
    webinar = Activity(type=ActivityType.WEBINAR_ATTENDED, at=later, campaign_id="webinar")
    lead = record_activity(lead, webinar, rules, later, "c4").lead
    # The capture through no campaign is the first touch; the page view named none.
    assert lead.touches == Touches(first=NO_CAMPAIGN, last="webinar", counts={"": 1, "expo": 1, "webinar": 1})


def won(n: int, touches: Touches, amount: str, currency: str = "EUR") -> Lead:
    return Lead(
        lead_id=f"l{n}",
        campaign_id=touches.first or None,
        channel="event",
        contact={"email": f"p{n}@acme.example", "name": "P"},
        company={"name": "Acme"},
        consent=True,
        intent=Intent.DEMO_REQUEST,
        status=LeadStatus.WON,
        captured_at=NOW,
        updated_at=NOW,
        qualified_at=NOW,
        won_amount=Decimal(amount),
        won_currency=currency,
        touches=touches,
    )


def test_over_all_campaigns_every_model_adds_up_to_the_won_revenue() -> None:
    leads = [
        won(1, FIVE, "14400.00"),
        won(2, journey("ads", "webinar", "ads"), "999.99"),
        won(3, journey(NO_CAMPAIGN), "100.00"),
        won(4, journey(NO_CAMPAIGN, "expo", "webinar"), "33.33"),
        won(5, journey("expo", "ads"), "7.50", "USD"),
    ]
    totals: Counter[Hashable] = Counter()
    for lead in leads:
        totals.update(contribution(lead))
    campaigns = ["expo", "webinar", "ads", NO_CAMPAIGN]
    for model in Model:
        eur = sum(
            counts_of(c, totals, {}).attributed.get(model, {}).get("EUR", Decimal(0)) for c in campaigns
        )
        usd = sum(
            counts_of(c, totals, {}).attributed.get(model, {}).get("USD", Decimal(0)) for c in campaigns
        )
        assert (eur, usd) == (Decimal("15533.32"), Decimal("7.50")), model
    # First touch is what campaign performance's revenue has always said.
    for campaign_id in ("expo", "ads"):
        counts = counts_of(campaign_id, totals, {})
        assert counts.attributed[Model.FIRST_TOUCH] == counts.revenue
    # Linear for "ads": 1/5 of 14400.00 + 2/3 of 999.99 + 1/2 of 7.50 USD.
    ads = counts_of("ads", totals, {}).attributed[Model.LINEAR]
    assert ads == {"EUR": Decimal("2880.00") + Decimal("666.66"), "USD": Decimal("3.75")}
