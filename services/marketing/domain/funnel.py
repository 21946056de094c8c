"""The funnel from campaign to order: how many leads got how far, and the handover
figures that settle "if only Sales followed up" against "if only Marketing gave us
decent leads".

A lead counts in the cohort of its campaign, channel and capture day: a period is
the leads captured in it, and the funnel says what became of them so far (the
usual cohort funnel: a lead captured in March and won in May is March's win).

The steps: captured → qualified (the rest disqualified, with the rules that did it,
or still nurturing) → deal opened → first contact → each open stage reached →
won (or lost, with the reasons; `not_a_real_lead` is sales sending the lead back)
→ ordered → fulfilled (or cancelled). A stage counts the deals that reached it or went beyond it (reps may
skip stages; a won deal passed them all), so the steps only narrow.

Follow-up SLA: met when the first contact came by the time sales set
(`follow_up_due_at` of deal.updated), breached when it came later or has not come
by then; pending while it may still come in time. Time to first contact is kept in
buckets (summable over workers); its median is reported as the upper bound of the
bucket that holds it, which is what buckets can honestly say.

Like campaign performance (performance.py), each lead contributes what it is now
(`contribution`), summed by each worker over its own leads as they are written;
a read adds the workers' sums and filters them (`funnel_from`).
"""

from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.journey import OPEN_STAGES
from services.marketing.domain.leads import Lead, LeadStatus
from services.marketing.domain.performance import Money, Ratio, ratio, roi

FUNNEL = "funnel"  # the first part of every key, so the funnel's sums are told apart

# Upper bounds of the time-to-first-contact buckets, in seconds; the last is open.
TTFC_BUCKETS = (300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 48 * 3600, 7 * 24 * 3600)
UNASSIGNED = "unassigned"
NO_CAMPAIGN = ""


def _bucket(seconds: float) -> int:
    return next((i for i, bound in enumerate(TTFC_BUCKETS) if seconds <= bound), len(TTFC_BUCKETS))


def contribution(lead: Lead) -> dict[Hashable, Any]:
    """What `lead` adds to the funnel: (FUNNEL, campaign, channel, day, what, *detail) -> n."""
    cohort = (FUNNEL, lead.campaign_id or NO_CAMPAIGN, str(lead.channel), lead.captured_at.date().isoformat())
    adds: dict[Hashable, Any] = {(*cohort, "captured"): 1}
    if lead.qualified_at is not None:
        adds[(*cohort, "qualified")] = 1
    if lead.status is LeadStatus.DISQUALIFIED:
        adds[(*cohort, "disqualified")] = 1
        for rule in lead.disqualified_by:
            adds[(*cohort, "disqualified_by", rule)] = 1
    journey = lead.journey
    closed = lead.status in (LeadStatus.WON, LeadStatus.LOST, LeadStatus.RECYCLED)
    if closed or (journey is not None and journey.deal_opened_at is not None):
        adds[(*cohort, "deal_opened")] = 1
    if closed:
        adds[(*cohort, "won" if lead.status is LeadStatus.WON else "lost")] = 1
        if lead.lost_reason is not None:
            adds[(*cohort, "lost_reason", str(lead.lost_reason))] = 1
        if lead.status is LeadStatus.RECYCLED:
            adds[(*cohort, "not_a_real_lead")] = 1
    if lead.won_amount is not None and lead.won_currency is not None:
        adds[(*cohort, "revenue", lead.won_currency)] = lead.won_amount
    if journey is None:
        return adds
    # A deal that got further passed the stages before it, skipped or not, and a won
    # deal passed them all: each stage counts the deals that reached it or beyond,
    # so the steps only narrow and every conversion between them is defined.
    furthest = max((OPEN_STAGES.index(s) for s in journey.stages), default=-1)
    if lead.status is LeadStatus.WON:
        furthest = len(OPEN_STAGES) - 1
    for stage in OPEN_STAGES[: furthest + 1]:
        adds[(*cohort, "stage", str(stage))] = 1
    owner = journey.owner or UNASSIGNED
    contacted, due = journey.first_contact_at, journey.follow_up_due_at
    if contacted is not None:
        adds[(*cohort, "contacted")] = 1
        if journey.deal_opened_at is not None:
            seconds = (contacted - journey.deal_opened_at).total_seconds()
            adds[(*cohort, "ttfc", _bucket(seconds))] = 1
        if due is not None:
            adds[(*cohort, "sla", owner, "met" if contacted <= due else "breached")] = 1
    elif due is not None and not closed:
        # Met or breached depends on the time of the read: kept with its due time.
        adds[(*cohort, "awaiting", owner, due.astimezone(UTC).isoformat())] = 1
    if journey.fulfilled_at is not None:
        adds[(*cohort, "fulfilled")] = 1
    if journey.cancelled_at is not None:
        adds[(*cohort, "order_cancelled")] = 1
    if journey.ordered_at is not None:
        adds[(*cohort, "ordered")] = 1
        if journey.order_total is not None and journey.order_currency is not None:
            adds[(*cohort, "ordered_value", journey.order_currency)] = journey.order_total
    return adds


# -- the read ------------------------------------------------------------------------


class Step(BaseModel):
    step: str
    count: int
    conversion: Ratio | None = Field(description="count / the previous step's count")


class FollowUpCounts(BaseModel):
    met: int = 0
    breached: int = 0
    pending: int = 0


class RepFollowUp(FollowUpCounts):
    owner: str


class CampaignFollowUp(FollowUpCounts):
    campaign_id: str | None


class Handover(BaseModel):
    contacted: int
    median_time_to_first_contact_seconds: int | None = Field(
        description="At most this long: the upper bound of the bucket holding the median (null: none, "
        "or beyond the last bucket)"
    )
    time_to_first_contact_buckets: list[tuple[int | None, int]] = Field(
        description="(upper bound in seconds, null for the open last bucket; leads contacted within it)"
    )
    follow_up: FollowUpCounts
    follow_up_by_rep: list[RepFollowUp]
    follow_up_by_campaign: list[CampaignFollowUp]
    not_a_real_lead: int
    not_a_real_lead_share: Ratio | None = Field(
        description="Of the closed deals, the share sent back as not real"
    )


class Segment(BaseModel):
    """One campaign's or channel's part of the funnel."""

    key: str | None = Field(description="The campaign id (null: leads of no campaign) or the channel")
    captured: int = 0
    qualified: int = 0
    deal_opened: int = 0
    won: int = 0
    lost: int = 0
    ordered: int = 0
    revenue: list[Money] = Field(default_factory=list)
    lead_to_won: Ratio | None = None
    # Campaigns only, filled from the campaign (see `with_campaigns`).
    name: str | None = None
    spend: Money | None = None
    roi: Ratio | None = None
    roi_note: str | None = None


class Funnel(BaseModel):
    as_of: AwareDatetime
    since: date | None = Field(description="Leads captured on or after this day (UTC)")
    until: date | None = Field(description="Leads captured on or before this day (UTC)")
    campaign_id: str | None
    channel: str | None
    steps: list[Step]
    nurturing: int = Field(description="Captured, neither qualified nor disqualified (yet)")
    orders_cancelled: int
    disqualified: int
    disqualified_by: dict[str, int]
    lost_reasons: dict[str, int]
    revenue: list[Money]
    ordered_value: list[Money]
    handover: Handover
    campaigns: list[Segment]
    channels: list[Segment]


STEP_NAMES = (
    "captured",
    "qualified",
    "deal_opened",
    "contacted",
    *(f"stage:{s}" for s in OPEN_STAGES),
    "won",
    "ordered",
    "fulfilled",
)


def _selected(
    key: tuple[Any, ...],
    campaign_id: str | None,
    channel: str | None,
    since: date | None,
    until: date | None,
) -> bool:
    _, campaign, chan, day = key[:4]
    if campaign_id is not None and campaign != campaign_id:
        return False
    if channel is not None and chan != channel:
        return False
    if since is not None and day < since.isoformat():
        return False
    return until is None or day <= until.isoformat()


def _money(amounts: Mapping[str, Decimal]) -> list[Money]:
    return [Money(amount=a, currency=c) for c, a in sorted(amounts.items()) if a]


def _median_bucket(buckets: list[int]) -> int | None:
    total = sum(buckets)
    if not total:
        return None
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if 2 * seen >= total:
            return TTFC_BUCKETS[index] if index < len(TTFC_BUCKETS) else None
    return None  # pragma: no cover - the loop always returns


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.revenue: dict[str, Decimal] = {}

    def add(self, what: str, amount: Any) -> None:
        self.counts[what] = self.counts.get(what, 0) + amount

    def segment(self, key: str | None) -> Segment:
        c = self.counts
        return Segment(
            key=key,
            captured=c.get("captured", 0),
            qualified=c.get("qualified", 0),
            deal_opened=c.get("deal_opened", 0),
            won=c.get("won", 0),
            lost=c.get("lost", 0),
            ordered=c.get("ordered", 0),
            revenue=_money(self.revenue),
            lead_to_won=ratio(c.get("won", 0), c.get("captured", 0)),
        )


def funnel_from(
    sums: Mapping[Hashable, Any],
    now: datetime,
    *,
    campaign_id: str | None = None,
    channel: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Funnel:
    """The funnel of the leads selected (campaign, channel, capture days) at `now`."""
    whole = _Tally()
    by_campaign: dict[str, _Tally] = {}
    by_channel: dict[str, _Tally] = {}
    disqualified_by: dict[str, int] = {}
    lost_reasons: dict[str, int] = {}
    ordered_value: dict[str, Decimal] = {}
    ttfc = [0] * (len(TTFC_BUCKETS) + 1)
    follow_up = FollowUpCounts()
    by_rep: dict[str, FollowUpCounts] = {}
    sla_by_campaign: dict[str, FollowUpCounts] = {}
    now_iso = now.astimezone(UTC).isoformat()
    for key, amount in sums.items():
        if not (isinstance(key, tuple) and len(key) >= 5 and key[0] == FUNNEL):
            continue
        if not _selected(key, campaign_id, channel, since, until):
            continue
        campaign, chan, what, detail = key[1], key[2], key[4], key[5:]
        segments = (whole, by_campaign.setdefault(campaign, _Tally()), by_channel.setdefault(chan, _Tally()))
        match what, detail:
            case "revenue", (str() as currency,):
                for tally in segments:
                    tally.revenue[currency] = tally.revenue.get(currency, Decimal(0)) + amount
            case "ordered_value", (str() as currency,):
                ordered_value[currency] = ordered_value.get(currency, Decimal(0)) + amount
            case "stage", (str() as stage,):
                whole.add(f"stage:{stage}", amount)
            case "disqualified_by", (str() as rule,):
                disqualified_by[rule] = disqualified_by.get(rule, 0) + amount
            case "lost_reason", (str() as reason,):
                lost_reasons[reason] = lost_reasons.get(reason, 0) + amount
            case "ttfc", (int() as bucket,):
                ttfc[min(bucket, len(ttfc) - 1)] += amount
            case ("sla", (str() as owner, str() as status)) | ("awaiting", (str() as owner, str() as status)):
                if what == "awaiting":
                    status = "breached" if status < now_iso else "pending"
                for sla in (
                    follow_up,
                    by_rep.setdefault(owner, FollowUpCounts()),
                    sla_by_campaign.setdefault(campaign, FollowUpCounts()),
                ):
                    setattr(sla, status, getattr(sla, status) + amount)
            case _, ():
                for tally in segments:
                    tally.add(what, amount)
    counts = whole.counts
    steps: list[Step] = []
    for name in STEP_NAMES:
        count = counts.get(name, 0)
        steps.append(
            Step(step=name, count=count, conversion=ratio(count, steps[-1].count) if steps else None)
        )
    closed = counts.get("won", 0) + counts.get("lost", 0)
    handover = Handover(
        contacted=counts.get("contacted", 0),
        median_time_to_first_contact_seconds=_median_bucket(ttfc),
        time_to_first_contact_buckets=[
            (TTFC_BUCKETS[i] if i < len(TTFC_BUCKETS) else None, n) for i, n in enumerate(ttfc)
        ],
        follow_up=follow_up,
        follow_up_by_rep=[RepFollowUp(owner=o, **c.model_dump()) for o, c in sorted(by_rep.items())],
        follow_up_by_campaign=[
            CampaignFollowUp(campaign_id=k or None, **c.model_dump())
            for k, c in sorted(sla_by_campaign.items())
        ],
        not_a_real_lead=counts.get("not_a_real_lead", 0),
        not_a_real_lead_share=ratio(counts.get("not_a_real_lead", 0), closed),
    )
    qualified, disqualified = counts.get("qualified", 0), counts.get("disqualified", 0)
    return Funnel(
        as_of=now,
        since=since,
        until=until,
        campaign_id=campaign_id,
        channel=channel,
        steps=steps,
        nurturing=counts.get("captured", 0) - qualified - disqualified,
        orders_cancelled=counts.get("order_cancelled", 0),
        disqualified=disqualified,
        disqualified_by=dict(sorted(disqualified_by.items())),
        lost_reasons=dict(sorted(lost_reasons.items())),
        revenue=_money(whole.revenue),
        ordered_value=_money(ordered_value),
        handover=handover,
        # Leads of no campaign last.
        campaigns=[
            t.segment(k or None) for k, t in sorted(by_campaign.items(), key=lambda kt: (not kt[0], kt[0]))
        ],
        channels=[t.segment(k) for k, t in sorted(by_channel.items())],
    )


def with_campaigns(funnel: Funnel, campaigns: Iterable[Campaign]) -> Funnel:
    """The campaign rows with each campaign's name, spend and ROI (revenue of the leads
    in view against the campaign's whole budget; see performance.py for ROI's rules)."""
    known = {c.campaign_id: c for c in campaigns}
    rows = []
    for row in funnel.campaigns:
        campaign = known.get(row.key) if row.key is not None else None
        if campaign is None:
            rows.append(row)
            continue
        spend = Money(amount=campaign.budget.amount, currency=campaign.budget.currency)
        campaign_roi, note = roi(spend, {m.currency: m.amount for m in row.revenue})
        rows.append(
            row.model_copy(
                update={"name": campaign.name, "spend": spend, "roi": campaign_roi, "roi_note": note}
            )
        )
    return funnel.model_copy(update={"campaigns": rows})


# -- between workers -------------------------------------------------------------------


def encode_sums(sums: Mapping[Hashable, Any]) -> list[list[Any]]:
    """This worker's funnel sums as JSON rows [key..., value] (money as strings)."""
    rows: list[list[Any]] = []
    for key, value in sums.items():
        if isinstance(key, tuple) and key and key[0] == FUNNEL:
            rows.append([*key, format(value, "f") if isinstance(value, Decimal) else value])
    return rows


def decode_sums(rows: Iterable[list[Any]]) -> dict[Hashable, Any]:
    sums: dict[Hashable, Any] = {}
    for *key, value in rows:
        money = key[4] in ("revenue", "ordered_value")
        name = tuple(key)
        sums[name] = sums.get(name, 0) + (Decimal(value) if money else int(value))
    return sums
