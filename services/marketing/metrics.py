"""Marketing's business metrics.

Every label is a bounded set: channel, status, outcome and reason names come from
enums and the rules; campaign_id is kept because campaigns are few and created by
marketing staff (a capture naming an unknown campaign is refused before any metric
counts it). Never a lead id or an email.
"""

from prometheus_client import Counter, Histogram

LEADS_CAPTURED = Counter(
    "leadflow_marketing_leads_captured",
    "New leads captured, by channel and campaign ('none' without one).",
    ["channel", "campaign_id"],
)
DUPLICATES = Counter(
    "leadflow_marketing_duplicate_captures",
    "Captures of a person who already is a lead (counted as engagement), by channel.",
    ["channel"],
)
CAPTURES_REFUSED = Counter(
    "leadflow_marketing_captures_refused",
    "Captures refused by the rules (422), by reason: unknown_campaign, consent_required.",
    ["reason"],
)
QUALIFIED = Counter(
    "leadflow_marketing_leads_qualified",
    "Leads qualified and handed to sales, by campaign ('none' without one).",
    ["campaign_id"],
)
DISQUALIFIED = Counter(
    "leadflow_marketing_leads_disqualified",
    "Leads that became disqualified, by each disqualifier that applied.",
    ["reason"],
)
SCORE = Histogram(
    "leadflow_marketing_lead_score",
    "A lead's score each time its status changes, by the status it changed to.",
    ["status"],
    buckets=(0, 10, 20, 30, 40, 50, 60, 70, 80, 100, 150),
)
DEAL_OUTCOMES = Counter(
    "leadflow_marketing_deal_outcomes",
    "Closed-loop outcomes fed back from sales, by outcome and lost reason.",
    ["outcome", "lost_reason"],
)
EARLY_JOURNEY_EVENTS = Counter(
    "leadflow_marketing_early_journey_events",
    "Events of sales and orders about a lead not stored yet, kept until it is (a few after a "
    "crash; a steady rise means events about leads marketing never had).",
)
