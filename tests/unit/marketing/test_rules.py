"""The rule set is data: loaded from a file, replaceable without code changes."""

from pathlib import Path

import pytest
import yaml

from schemas.events import Channel, Intent
from services.marketing.domain.activities import ActivityType
from services.marketing.domain.rules import (
    DEFAULT_RULES_FILE,
    RuleSet,
    RulesFileError,
    TitleRule,
    industry_key,
)
from services.marketing.settings import MarketingSettings


def default_document() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(DEFAULT_RULES_FILE.read_text())
    return loaded


def test_the_default_rules_ship_with_the_service(rules: RuleSet) -> None:
    assert rules.version.startswith("default-")
    assert rules.threshold == 60
    assert set(rules.hand_raiser_intents) == {Intent.DEMO_REQUEST, Intent.CONTACT_SALES}
    assert rules.engagement.points[ActivityType.DEMO_REQUEST] == 40
    assert "gmail.com" in rules.disqualifiers.free_mail_domains
    # Form channels need consent at capture; a badge scan at a stand does not.
    assert Channel.WEB in rules.capture.consent_required_channels
    assert Channel.EVENT not in rules.capture.consent_required_channels


def test_another_file_is_another_rule_set(tmp_path: Path) -> None:
    document = default_document()
    document |= {"version": "strict-1", "threshold": 90, "hand_raiser_intents": []}
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(document))
    strict = RuleSet.load(path)
    assert (strict.version, strict.threshold, strict.hand_raiser_intents) == ("strict-1", 90, [])


def test_lists_are_normalised_so_a_hand_written_file_matches(tmp_path: Path) -> None:
    document = default_document()
    document["fit"]["industries"] = ["Financial Services"]  # type: ignore[index]
    document["disqualifiers"]["competitor_domains"] = [" Rival.COM "]  # type: ignore[index]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    loaded = RuleSet.load(path)
    assert loaded.fit.industries == ["financial_services"]
    assert loaded.disqualifiers.competitor_domains == ["rival.com"]


def test_a_file_without_a_capture_section_needs_consent_nowhere(tmp_path: Path) -> None:
    document = default_document()
    del document["capture"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    assert RuleSet.load(path).capture.consent_required_channels == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"threshold": 0}, "threshold"),
        ({"surprise": 1}, "surprise"),
        ({"capture": {"consent_required_channels": ["carrier_pigeon"]}}, "consent_required_channels"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_what_is_wrong(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(default_document() | change))
    with pytest.raises(RulesFileError, match=named):
        RuleSet.load(path)


def test_a_missing_or_broken_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot read"):
        RuleSet.load(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("threshold: [60\n")
    with pytest.raises(RulesFileError, match="cannot read"):
        RuleSet.load(broken)


def test_the_deployment_names_its_rules_file_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADFLOW_RULES_FILE", raising=False)
    assert MarketingSettings().rules_file == DEFAULT_RULES_FILE
    monkeypatch.setenv("LEADFLOW_RULES_FILE", "/etc/leadflow/rules.yaml")
    assert MarketingSettings().rules_file == Path("/etc/leadflow/rules.yaml")


@pytest.mark.parametrize(
    ("title", "matches"),
    [
        ("CTO", True),
        ("Chief Revenue Officer", True),
        ("VP Sales", True),
        ("Director of IT", False),  # 'cto' is inside 'Director', not a word of it
        ("Project Coordinator", False),  # nor 'coo' in 'Coordinator'
        ("Product Owner Assistant", True),  # 'owner' is a word here: the file decides
        ("", False),
    ],
)
def test_titles_match_on_whole_words(title: str, matches: bool) -> None:
    executive = TitleRule(seniority="executive", points=20, keywords=["cto", "coo", "chief", "vp", "owner"])
    assert executive.matches(title) is matches


def test_industries_are_compared_by_key() -> None:
    assert industry_key("Financial Services") == industry_key("financial-services") == "financial_services"
