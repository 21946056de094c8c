"""The follow-up SLA: a pure function of the deal, the time and the SLA."""

from datetime import timedelta

from services.sales.domain.deals import ContactChannel, Stage, move, record_contact
from services.sales.domain.follow_up import FollowUpStatus, follow_up
from tests.unit.sales.samples import T0, a_deal, at

SLA = timedelta(hours=1)


def test_an_untouched_deal_is_pending_until_the_sla_runs_out_then_breached() -> None:
    deal = a_deal()
    assert follow_up(deal, at(0), SLA).status is FollowUpStatus.PENDING
    on_time = follow_up(deal, at(60), SLA)
    assert on_time.status is FollowUpStatus.PENDING
    assert on_time.due_at == T0 + SLA
    late = follow_up(deal, at(61), SLA)
    assert late.status is FollowUpStatus.BREACHED
    assert late.overdue is True
    assert late.first_contact_at is None


def test_a_first_contact_within_the_sla_meets_it_for_good() -> None:
    deal = record_contact(a_deal(), ContactChannel.CALL, None, at(59))
    assert follow_up(deal, at(59), SLA).status is FollowUpStatus.MET
    met = follow_up(deal, at(60 * 24 * 30), SLA)
    assert met.status is FollowUpStatus.MET
    assert met.first_contact_at == at(59)
    assert met.overdue is False


def test_a_first_contact_after_the_sla_is_a_breach_but_no_longer_overdue() -> None:
    deal = move(a_deal(), Stage.QUALIFYING, at(90))
    status = follow_up(deal, at(91), SLA)
    assert status.status is FollowUpStatus.BREACHED
    assert status.overdue is False


def test_the_sla_is_a_setting() -> None:
    deal = a_deal()
    assert follow_up(deal, at(5), timedelta(minutes=4)).status is FollowUpStatus.BREACHED
    assert follow_up(deal, at(5), timedelta(hours=24)).status is FollowUpStatus.PENDING
