"""Orders' business metrics."""

from prometheus_client import Counter

ORDERS_CREATED = Counter("leadflow_orders_created", "Orders created from won deals.", ["currency"])
STATUS_CHANGES = Counter("leadflow_orders_status_changes", "Order status changes.", ["status"])
