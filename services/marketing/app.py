"""The marketing worker: its Faust app, web API, topics and tables."""

from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.leads import Lead
from services.marketing.domain.performance import Tally
from services.marketing.domain.rules import RuleSet
from services.marketing.settings import MarketingSettings
from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable

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
# Campaigns live on the partition of their own id, like their performance tally
# (fed from the campaign-facts topic, keyed the same way): one worker holds both
# and changes the tally one fact at a time. A Faust GlobalTable would put every
# campaign on every worker, but it does not reliably follow changes made on
# another worker; a worker that needs a campaign asks its owner (views.py).
campaigns = ModelTable(app, "campaigns", Campaign, help="Campaigns by campaign_id")
campaign_performance = ModelTable(
    app, "campaign-performance", Tally, help="Closed-loop counts by campaign_id"
)
