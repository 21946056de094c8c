"""When is a lead not really a lead? Fit, decayed engagement, disqualifiers, hand-raisers."""

from datetime import timedelta

import pytest

from schemas.events import Company, Contact, Intent
from services.marketing.domain.activities import Activity, ActivityType, decayed
from services.marketing.domain.campaigns import SizeRange, Target
from services.marketing.domain.qualification import Prospect, Verdict, assess
from services.marketing.domain.rules import RuleSet
from tests.unit.marketing.conftest import NOW


def prospect(
    email: str = "ana.ruiz@acme-industries.com",
    *,
    title: str | None = "IT Manager",
    industry: str | None = "software",
    size: int | None = 120,
    country: str | None = "DE",
    consent: bool = True,
    intent: Intent | None = None,
    activities: tuple[Activity, ...] = (),
    target: Target | None = None,
) -> Prospect:
    return Prospect(
        contact=Contact(email=email, name="Ana Ruiz", title=title),
        company=Company(name="Acme", industry=industry, size=size, country=country),
        consent=consent,
        intent=intent,
        activities=activities,
        target=target,
    )


def points(result_reasons: tuple[object, ...]) -> dict[str, int]:
    return {r.rule: r.points for r in result_reasons}  # type: ignore[attr-defined]


def test_a_fitting_lead_without_engagement_is_nurtured_and_told_why(rules: RuleSet) -> None:
    result = assess(prospect(), rules, NOW)
    # software 15 + 120 employees 10 + manager 8
    assert points(result.reasons) == {"fit.industry": 15, "fit.company_size": 10, "fit.title.manager": 8}
    assert result.score == 33
    assert result.verdict is Verdict.NURTURING
    assert (result.threshold, result.rules_version) == (60, rules.version)


def test_engagement_takes_a_nurtured_lead_over_the_threshold(rules: RuleSet) -> None:
    done = tuple(
        Activity(type=t, at=NOW)
        for t in (
            ActivityType.CONTENT_DOWNLOAD,
            ActivityType.WEBINAR_ATTENDED,
            ActivityType.PRICING_PAGE_VIEW,
        )
    )
    result = assess(prospect(activities=done), rules, NOW)
    assert points(result.reasons)["engagement"] == 35
    assert result.score == 68
    assert result.verdict is Verdict.QUALIFIED


def test_engagement_halves_every_half_life(rules: RuleSet) -> None:
    old = Activity(type=ActivityType.WEBINAR_ATTENDED, at=NOW - timedelta(days=28))
    result = assess(prospect(activities=(old,)), rules, NOW)
    assert points(result.reasons)["engagement"] == 4  # 15 / 2 / 2 = 3.75
    assert decayed(10, 14, 14) == 5.0
    assert decayed(10, -1, 14) == 10.0  # a clock a little ahead does not add points


def test_engagement_is_capped(rules: RuleSet) -> None:
    many = tuple(Activity(type=ActivityType.WEBINAR_ATTENDED, at=NOW) for _ in range(10))
    assert points(assess(prospect(activities=many), rules, NOW).reasons)["engagement"] == 60


def test_a_campaign_target_counts_instead_of_the_general_fit(rules: RuleSet) -> None:
    target = Target(industries=["Software"], countries=["de"], company_size=SizeRange(min=100, max=500))
    result = assess(prospect(target=target), rules, NOW)
    assert points(result.reasons) == {
        "fit.target_industry": 20,
        "fit.target_country": 10,
        "fit.target_size": 10,
        "fit.company_size": 10,
        "fit.title.manager": 8,
    }


@pytest.mark.parametrize("intent", [Intent.DEMO_REQUEST, Intent.CONTACT_SALES])
def test_a_hand_raiser_qualifies_at_once(rules: RuleSet, intent: Intent) -> None:
    result = assess(prospect(title=None, industry=None, size=None, intent=intent), rules, NOW)
    assert result.verdict is Verdict.QUALIFIED
    assert result.reasons[0].rule == "hand_raiser"
    assert result.score < result.threshold


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"consent": False}, "no_consent"),
        ({"email": "ana@mailinator.com"}, "disposable_email"),
        ({"email": "ana.ruiz@gmail.com"}, "free_mail_domain"),
        ({"activities": (Activity(type=ActivityType.UNSUBSCRIBE, at=NOW),)}, "unsubscribed"),
    ],
)
def test_disqualifiers_win_even_over_a_hand_raise(
    rules: RuleSet, changes: dict[str, object], reason: str
) -> None:
    result = assess(prospect(intent=Intent.DEMO_REQUEST, **changes), rules, NOW)  # type: ignore[arg-type]
    assert result.verdict is Verdict.DISQUALIFIED
    assert reason in result.disqualified_by


def test_a_competitor_is_disqualified_when_the_rules_name_it(rules: RuleSet) -> None:
    with_rival = rules.model_copy(
        update={"disqualifiers": rules.disqualifiers.model_copy(update={"competitor_domains": ["rival.io"]})}
    )
    assert assess(prospect("spy@rival.io"), with_rival, NOW).disqualified_by == ("competitor",)
    assert assess(prospect("spy@rival.io"), rules, NOW).verdict is Verdict.NURTURING


def test_only_the_most_senior_title_counts(rules: RuleSet) -> None:
    result = assess(prospect(title="Director, Team Lead"), rules, NOW)
    assert points(result.reasons).get("fit.title.director") == 15
    assert "fit.title.manager" not in points(result.reasons)
    assert "fit.title.executive" not in points(assess(prospect(title="Director of IT"), rules, NOW).reasons)


def test_the_score_is_the_sum_of_the_reasons(rules: RuleSet) -> None:
    result = assess(
        prospect(title="CEO", size=5000, activities=(Activity(type=ActivityType.EMAIL_CLICK, at=NOW),)),
        rules,
        NOW,
    )
    assert result.score == sum(r.points for r in result.reasons) == 15 + 20 + 20 + 5
