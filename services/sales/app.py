"""The sales worker: its Faust app, web API, reference data and tables."""

from services.runtime.clock import Clock
from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable
from services.sales.domain.assignment import Desk, Placement, Roster
from services.sales.domain.catalog import Catalog
from services.sales.domain.deals import Deal
from services.sales.settings import SalesSettings

settings = SalesSettings()
catalog = Catalog.load(settings.catalog_file)
roster = Roster.load(settings.reps_file)
clock = Clock()

runtime = ServiceRuntime(
    settings,
    title="Leadflow sales",
    description="Deals through the sales process, from qualified lead to won or lost: "
    "assignment to reps, the follow-up SLA and catalogue-priced closes.",
)
app = runtime.app

# Keyed by lead_id, like every topic: one qualified lead, one deal.
deals = ModelTable(app, "deals", Deal, help="Deals by lead_id")

# The assignment desk's state (see domain/assignment.py). Written only by the desk
# agent, from the one partition of the assignment requests: `desk` under
# DESK_KEY, `placements` by lead_id but all on that same partition.
desk = ModelTable(app, "desk", Desk, help="Reps' load, round robin and the unassigned queue")
placements = ModelTable(app, "placements", Placement, help="The desk's decision per lead")
