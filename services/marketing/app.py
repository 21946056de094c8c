"""The marketing worker: its Faust app, web API, topics and tables."""

from services.marketing.domain.campaigns import Campaign
from services.marketing.domain.leads import Lead
from services.marketing.domain.rules import RuleSet
from services.marketing.settings import MarketingSettings
from services.runtime.service import ServiceRuntime
from services.runtime.tables import ModelTable

settings = MarketingSettings()
rules = RuleSet.load(settings.rules_file)

runtime = ServiceRuntime(
    settings,
    title="Leadflow marketing",
    description="Campaigns, lead capture, qualification and campaign performance.",
)
app = runtime.app

leads = ModelTable(app, "leads", Lead, help="Leads by lead_id")
# Every worker needs every campaign to validate and score captures: a global table.
campaigns = ModelTable(app, "campaigns", Campaign, help="Campaigns by campaign_id", everywhere=True)
