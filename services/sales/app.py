"""The sales worker: its Faust app, web API and tables."""

from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable
from services.sales.domain.catalog import Catalog
from services.sales.domain.deals import Deal
from services.sales.settings import SalesSettings

settings = SalesSettings()
catalog = Catalog.load(settings.catalog_file)

runtime = ServiceRuntime(
    settings,
    title="Leadflow sales",
    description="Deals through the sales process, from qualified lead to won or lost.",
)
app = runtime.app

# Keyed by lead_id, like every topic: one qualified lead, one deal.
deals = ModelTable(app, "deals", Deal, help="Deals by lead_id")
