"""Marketing's business metrics. Labels are bounded sets: channel, campaign, reason."""

from prometheus_client import Counter, Histogram

LEADS_CAPTURED = Counter(
    "leadflow_marketing_leads_captured",
    "New leads captured, by channel and campaign.",
    ["channel", "campaign_id"],
)
DUPLICATES = Counter(
    "leadflow_marketing_duplicate_captures",
    "Captures of a person who already is a lead (counted as engagement).",
    ["channel"],
)
QUALIFIED = Counter(
    "leadflow_marketing_leads_qualified", "Leads qualified and handed to sales.", ["campaign_id"]
)
DISQUALIFIED = Counter("leadflow_marketing_leads_disqualified", "Leads disqualified, by reason.", ["reason"])
SCORE = Histogram(
    "leadflow_marketing_lead_score",
    "Lead scores at each assessment.",
    buckets=(0, 10, 20, 30, 40, 50, 60, 70, 80, 100, 150),
)
DEAL_OUTCOMES = Counter(
    "leadflow_marketing_deal_outcomes",
    "Deal outcomes fed back from sales, by outcome and lost reason.",
    ["outcome", "lost_reason"],
)
