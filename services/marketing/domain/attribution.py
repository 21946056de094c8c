"""Attribution of won revenue across the campaigns a lead touched (HubSpot's models).

A touch is a campaign reaching the lead: its capture, a capture again (a
recapture), an activity that names a campaign (`campaign_id` on POST
/leads/{id}/activities). A capture through no campaign is a touch too, by no
campaign (`NO_CAMPAIGN`): so first touch credits exactly the campaign a lead was
first captured through, as campaign performance's revenue always has. A lead keeps
its touches as counts per campaign with its first and its last, which is all the
four models need:

- first_touch: all of it to the first campaign that touched the lead;
- last_touch: all of it to the last one before the deal was won;
- linear: an equal share to every touch (a campaign that touched twice gets two);
- u_shaped: 40 % to the first touch, 40 % to the last, 20 % shared equally by the
  touches in between; with one touch it gets all of it, with two, half each.

Under every model, the credits of all campaigns and of `NO_CAMPAIGN` add up to the
won revenue. Each
lead's amount is split to the cent and the cents left over by rounding go to the
largest remainders, so a lead's credits add up to its amount exactly, and the
totals to the total won revenue, in Decimal.
"""

from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

CENT = Decimal("0.01")
NO_CAMPAIGN = ""


class Model(StrEnum):
    FIRST_TOUCH = "first_touch"
    LAST_TOUCH = "last_touch"
    LINEAR = "linear"
    U_SHAPED = "u_shaped"


class Touches(BaseModel):
    model_config = ConfigDict(frozen=True)

    first: str
    last: str
    counts: dict[str, int] = Field(description="Touches per campaign, first and last included")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def touched(touches: Touches | None, campaign_id: str) -> Touches:
    """`touches` (None: the first) with one more, by `campaign_id` (or NO_CAMPAIGN)."""
    if touches is None:
        return Touches(first=campaign_id, last=campaign_id, counts={campaign_id: 1})
    counts = dict(touches.counts)
    counts[campaign_id] = counts.get(campaign_id, 0) + 1
    return Touches(first=touches.first, last=campaign_id, counts=counts)


def weights(touches: Touches, model: Model) -> dict[str, Fraction]:
    """Each campaign's share of the lead's revenue under `model`; they add up to 1."""
    match model:
        case Model.FIRST_TOUCH:
            return {touches.first: Fraction(1)}
        case Model.LAST_TOUCH:
            return {touches.last: Fraction(1)}
        case Model.LINEAR:
            return {c: Fraction(n, touches.total) for c, n in touches.counts.items()}
    if touches.total <= 2:
        # One touch, or only a first and a last: theirs alone, in halves.
        share: dict[str, Fraction] = {}
        for campaign in (touches.first, touches.last):
            share[campaign] = share.get(campaign, Fraction(0)) + Fraction(1, 2)
        return share
    middle = {c: n - (c == touches.first) - (c == touches.last) for c, n in touches.counts.items()}
    between = sum(middle.values())
    share = {c: Fraction(n, 5 * between) for c, n in middle.items() if n}
    for campaign in (touches.first, touches.last):
        share[campaign] = share.get(campaign, Fraction(0)) + Fraction(2, 5)
    return share


def split(amount: Decimal, shares: dict[str, Fraction]) -> dict[str, Decimal]:
    """`amount` by `shares` (adding up to 1), to the cent, adding up to `amount` exactly:
    each gets its share rounded down, and the cents left go one each to the largest
    remainders (ties: the campaign id first in order)."""
    cents = int((amount / CENT).to_integral_value())
    exact = {c: Fraction(cents) * s for c, s in shares.items()}
    floors = {c: int(v) for c, v in exact.items()}
    left = cents - sum(floors.values())
    for campaign in sorted(exact, key=lambda c: (-(exact[c] - floors[c]), c))[:left]:
        floors[campaign] += 1
    return {c: (Decimal(n) * CENT).quantize(CENT, ROUND_DOWN) for c, n in floors.items() if n}


def credited(touches: Touches, amount: Decimal, model: Model) -> dict[str, Decimal]:
    """Who is credited with a won lead's `amount` under `model`."""
    return split(amount, weights(touches, model))
