"""Sales' business metrics. Labels are bounded sets: stage, outcome, reason."""

from prometheus_client import Counter

DEALS_OPENED = Counter("leadflow_sales_deals_opened", "Deals opened from qualified leads.")
STAGE_MOVES = Counter("leadflow_sales_stage_moves", "Deals moved into a stage.", ["stage"])
DEALS_CLOSED = Counter(
    "leadflow_sales_deals_closed", "Deals closed, by outcome and lost reason.", ["outcome", "lost_reason"]
)
