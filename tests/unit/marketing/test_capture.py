"""What a capture must be to be accepted: the HTTP body's checks and the rules'."""

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import Channel
from services.marketing.domain.capture import CaptureRefused, check, problems
from services.marketing.domain.rules import RuleSet
from services.marketing.models import LeadRequest
from tests.unit.marketing.conftest import campaign, capture


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "channel": "web",
        "campaign_id": None,
        "contact": {"email": "ana.ruiz@acme-industries.com", "name": "Ana Ruiz", "title": "CTO"},
        "company": {"name": "Acme", "industry": "software", "size": 120, "country": "DE"},
        "consent": True,
        **overrides,
    }


def refused_fields(payload: dict[str, Any]) -> set[tuple[str, ...]]:
    with pytest.raises(ValidationError) as refused:
        LeadRequest.model_validate(payload)
    return {tuple(str(p) for p in error["loc"]) for error in refused.value.errors()}


@pytest.mark.parametrize("email", ["ana", "ana@", "@acme.io", "ana@acme", "ana@@acme.io", "a b@acme.io"])
def test_an_email_that_is_not_one_is_refused(email: str) -> None:
    assert refused_fields(body(contact={"email": email, "name": "Ana"})) == {("contact", "email")}


def test_lengths_are_bounded_field_by_field() -> None:
    payload = body(
        contact={"email": "a@acme.io", "name": "x" * 201, "title": "t" * 201, "phone": "1" * 51},
        company={"name": "", "industry": "i" * 101},
        campaign_id="c" * 65,
    )
    assert refused_fields(payload) == {
        ("contact", "name"),
        ("contact", "title"),
        ("contact", "phone"),
        ("company", "name"),
        ("company", "industry"),
        ("campaign_id",),
    }


def test_an_unknown_field_is_refused_rather_than_ignored() -> None:
    assert refused_fields(body(consnet=True)) == {("consnet",)}


def test_a_form_s_loose_ends_are_tidied() -> None:
    request = LeadRequest.model_validate(
        body(
            contact={"email": "ana@acme.io", "name": "  Ana  ", "title": " ", "phone": ""},
            company={"name": "Acme", "country": "de", "industry": ""},
        )
    )
    data = request.capture()
    assert (data.contact.name, data.contact.title, data.contact.phone) == ("Ana", None, None)
    assert (data.company.country, data.company.industry) == ("DE", None)


def test_a_country_is_a_two_letter_code() -> None:
    assert refused_fields(body(company={"name": "Acme", "country": "Germany"})) == {("company", "country")}


def test_consent_is_required_on_the_channels_the_rules_name(rules: RuleSet) -> None:
    for channel in rules.capture.consent_required_channels:
        [problem] = problems(capture(channel=channel, campaign_id=None, consent=False), None, rules)
        assert (problem.field, problem.code) == ("consent", "consent_required")
        assert channel in problem.message
    # A badge scan without consent is kept (and disqualified later), not refused.
    assert problems(capture(channel=Channel.EVENT, campaign_id=None, consent=False), None, rules) == []


def test_an_unknown_campaign_is_refused(rules: RuleSet) -> None:
    [problem] = problems(capture(campaign_id="nope"), None, rules)
    assert (problem.field, problem.code) == ("campaign_id", "unknown_campaign")
    assert problems(capture(campaign_id="expo"), campaign(), rules) == []


def test_every_problem_is_reported_at_once_with_its_field(rules: RuleSet) -> None:
    data = capture(channel=Channel.WEB, campaign_id="nope", consent=False)
    with pytest.raises(CaptureRefused) as refused:
        check(data, None, rules)
    assert refused.value.status == 422
    assert refused.value.to_body() == {
        "detail": [
            {"loc": ["body", "campaign_id"], "msg": "unknown campaign 'nope'", "type": "unknown_campaign"},
            {
                "loc": ["body", "consent"],
                "msg": "consent is required for leads captured through the web channel",
                "type": "consent_required",
            },
        ]
    }
