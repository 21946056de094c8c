"""The sales worker: its Faust app, web API, reference data and tables."""

from services.runtime.clock import Clock
from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable
from services.sales.domain.assignment import Desk, Placement, QueueEntry, Roster
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

# The assignment desks' state (see domain/assignment.py), one desk per pool of reps.
# Written only by the desk agent, each desk's from the partition of its desk key
# (Faust writes a changelog to the partition of the record being processed), and
# every key starts with the desk key: `desk` under it, `placements` under
# `<desk key>/<lead id>`, `queue` under `<desk key>/<country or *>/<index>`.
desk = ModelTable(app, "desk", Desk, help="Per desk: reps' load, round robin, the queue's heads and tails")
placements = ModelTable(app, "placements", Placement, help="A desk's decision per lead")
queue = ModelTable(
    app, "queue", QueueEntry, help="Deals waiting for a rep, one per position in a desk's queue"
)
