"""The marketing worker: its Faust app, web API, topics and tables."""

from services.marketing.domain import funnel
from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.journey import Journey
from services.marketing.domain.leads import Lead
from services.marketing.domain.performance import contribution, last_change
from services.marketing.domain.rules import RuleSet
from services.marketing.settings import MarketingSettings
from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable
from services.runtime.tallies import Tally

settings = MarketingSettings()
# A bad rules file stops the worker here, with the reason, before it takes any lead.
rules = RuleSet.load(settings.rules_file)

runtime = ServiceRuntime(
    settings,
    title="Leadflow marketing",
    description="Campaigns, lead capture, qualification and campaign performance.",
)
app = runtime.app

leads = ModelTable(app, "leads", Lead, help="Leads by lead_id")
# A lead's journey that sales or orders announced before marketing stored the lead:
# marketing publishes lead.qualified before it stores the lead, so a crash between
# the two stores it only when its capture comes again, and sales may be quicker.
# Kept on the lead's key, it joins the lead when the lead is stored (handlers.py).
early_journeys = ModelTable(
    app, "early-journeys", Journey, help="Journeys of leads not stored yet, by lead_id"
)
# Campaigns live on the partition of their own id. A Faust GlobalTable would put
# every campaign on every worker, but it does not reliably follow changes made on
# another worker; a worker that needs a campaign asks its owner (views.py), and
# keeps it, as campaigns never change.
campaigns = ModelTable(app, "campaigns", Campaign, help="Campaigns by campaign_id")
# Campaign performance, summed over this worker's leads as they are written; a
# report adds up every worker's (views.py, domain/performance.py).
campaign_counts = Tally(runtime.cluster, leads, contribution, latest=last_change)
# The funnel (domain/funnel.py), kept the same way.
funnel_counts = Tally(runtime.cluster, leads, funnel.contribution)
