"""When is a lead not really a lead? Fit plus engagement against a threshold,
disqualifiers first, hand-raisers at once. Every decision lists its reasons.

An email that is not an email never gets this far: the capture is refused (422).
A real address on a disposable, free-mail or competitor domain, a missing
consent or an unsubscribe disqualifies: the lead is kept, with its reasons,
and is assessed again when it changes (a later capture may bring consent)."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.events import Company, Contact, Intent, ScoreReason
from services.marketing.domain.activities import Activity, ActivityType, age_in_days, decayed
from services.marketing.domain.campaigns import Target
from services.marketing.domain.identity import email_domain
from services.marketing.domain.rules import RuleSet, industry_key


class Verdict(StrEnum):
    QUALIFIED = "qualified"
    NURTURING = "nurturing"
    DISQUALIFIED = "disqualified"


@dataclass(frozen=True)
class Prospect:
    """What qualification looks at."""

    contact: Contact
    company: Company
    consent: bool
    intent: Intent | None
    activities: tuple[Activity, ...]
    # The segment of the campaign the lead came through, if any.
    target: Target | None


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    score: int
    threshold: int
    reasons: tuple[ScoreReason, ...]
    disqualified_by: tuple[str, ...]
    rules_version: str


def disqualifiers(prospect: Prospect, rules: RuleSet) -> list[str]:
    found = []
    domain = email_domain(prospect.contact.email)
    if rules.disqualifiers.require_consent and not prospect.consent:
        found.append("no_consent")
    if domain in rules.disqualifiers.disposable_domains:
        found.append("disposable_email")
    if domain in rules.disqualifiers.free_mail_domains:
        found.append("free_mail_domain")
    if domain in rules.disqualifiers.competitor_domains:
        found.append("competitor")
    if any(a.type is ActivityType.UNSUBSCRIBE for a in prospect.activities):
        found.append("unsubscribed")
    return found


def fit_reasons(prospect: Prospect, rules: RuleSet) -> list[ScoreReason]:
    fit, company = rules.fit, prospect.company
    target = prospect.target
    reasons = []
    industry = industry_key(company.industry or "")
    # A campaign's own target industries count instead of the general ideal ones.
    if target and target.has_industry(industry):
        reasons.append(
            ScoreReason(rule="fit.target_industry", points=fit.target_industry_points, detail=industry)
        )
    elif industry and industry in fit.industries:
        reasons.append(ScoreReason(rule="fit.industry", points=fit.industry_points, detail=industry))
    if target and target.has_country(company.country):
        reasons.append(
            ScoreReason(
                rule="fit.target_country", points=fit.target_country_points, detail=company.country or ""
            )
        )
    if company.size is not None:
        if target and target.company_size and target.company_size.contains(company.size):
            reasons.append(
                ScoreReason(rule="fit.target_size", points=fit.target_size_points, detail=str(company.size))
            )
        band = next((b for b in fit.company_size if b.contains(company.size)), None)
        if band is not None and band.points:
            reasons.append(ScoreReason(rule="fit.company_size", points=band.points, detail=str(company.size)))
    title = prospect.contact.title or ""
    # The first (most senior) rule that matches counts, alone.
    for rule in fit.titles:
        if rule.matches(title):
            reasons.append(ScoreReason(rule=f"fit.title.{rule.seniority}", points=rule.points, detail=title))
            break
    return [r for r in reasons if r.points]


def engagement_reason(prospect: Prospect, rules: RuleSet, now: datetime) -> ScoreReason | None:
    engagement = rules.engagement
    total = sum(
        decayed(engagement.points.get(a.type, 0), age_in_days(a.at, now), engagement.half_life_days)
        for a in prospect.activities
    )
    points = min(round(total), engagement.max_points)
    if points <= 0:
        return None
    counted = sum(1 for a in prospect.activities if engagement.points.get(a.type, 0))
    return ScoreReason(rule="engagement", points=points, detail=f"{counted} activities, decayed")


def assess(prospect: Prospect, rules: RuleSet, now: datetime) -> Assessment:
    reasons = fit_reasons(prospect, rules)
    engagement = engagement_reason(prospect, rules, now)
    if engagement:
        reasons.append(engagement)
    score = sum(r.points for r in reasons)
    blocked = disqualifiers(prospect, rules)
    if blocked:
        verdict = Verdict.DISQUALIFIED
    elif prospect.intent in rules.hand_raiser_intents:
        reasons.insert(0, ScoreReason(rule="hand_raiser", points=0, detail=str(prospect.intent)))
        verdict = Verdict.QUALIFIED
    else:
        verdict = Verdict.QUALIFIED if score >= rules.threshold else Verdict.NURTURING
    return Assessment(
        verdict=verdict,
        score=score,
        threshold=rules.threshold,
        reasons=tuple(reasons),
        disqualified_by=tuple(blocked),
        rules_version=rules.version,
    )
