"""The pipeline: list filters and the figures the metrics report."""

from datetime import timedelta
from decimal import Decimal

from schemas.events import LostReason, Outcome
from services.sales.domain.catalog import OrderedLine, quote
from services.sales.domain.deals import ContactChannel, Deal, Stage, assign, close, move, record_contact
from services.sales.domain.follow_up import FollowUpStatus, follow_up
from services.sales.domain.pipeline import figures, selected
from tests.unit.sales.samples import CATALOG, a_deal, at

SLA = timedelta(hours=1)


def pick(
    deal: Deal, stage: Stage | None = None, owner: str | None = None, sla: FollowUpStatus | None = None
) -> bool:
    return selected(deal, follow_up(deal, at(120), SLA), stage=stage, owner=owner, sla=sla)


def test_filters_by_stage_owner_and_sla() -> None:
    owned = assign(a_deal("a"), "rep-1", at(1))
    moved = move(owned, Stage.QUALIFYING, at(2))
    assert pick(moved, stage=Stage.QUALIFYING, owner="rep-1", sla=FollowUpStatus.MET)
    assert not pick(moved, stage=Stage.PROSPECTING)
    assert not pick(moved, owner="rep-2")
    assert not pick(moved, sla=FollowUpStatus.BREACHED)
    assert pick(a_deal("b"), sla=FollowUpStatus.BREACHED)


def test_owner_unassigned_is_the_queue_of_open_deals_without_a_rep() -> None:
    waiting = assign(a_deal("a"), None, at(1))
    assert pick(waiting, owner="unassigned")
    assert pick(a_deal("pending"), owner="unassigned")
    assert not pick(assign(a_deal("b"), "rep-1", at(1)), owner="unassigned")
    closed, _ = close(
        waiting, Outcome.LOST, lines=[], lost_reason=LostReason.TIMING, catalog=CATALOG, now=at(2)
    )
    assert not pick(closed, owner="unassigned")


def test_figures_count_open_deals_by_stage_value_and_breaches() -> None:
    offer = quote([OrderedLine(sku="SEAT", quantity=10, discount_percent=Decimal(10))], CATALOG)
    presenting = move(assign(a_deal("a"), "rep-1", at(1)), Stage.PRESENTING, at(5), proposal=offer)
    overdue = a_deal("b")
    late = record_contact(a_deal("c"), ContactChannel.EMAIL, None, at(90))
    won, _ = close(
        a_deal("d"),
        Outcome.WON,
        lines=[OrderedLine(sku="CORE", quantity=1)],
        lost_reason=None,
        catalog=CATALOG,
        now=at(3),
    )
    out = figures([presenting, overdue, late, won], at(120), SLA)
    assert out.open_by_stage == {
        Stage.PROSPECTING: 2,
        Stage.QUALIFYING: 0,
        Stage.PRESENTING: 1,
        Stage.HANDLING_OBJECTIONS: 0,
        Stage.CLOSING: 0,
    }
    assert out.value == {(Stage.PRESENTING, "EUR"): Decimal("4320.00")}
    assert out.breached == 2  # never contacted, and contacted late
    assert out.overdue == 1
    assert out.unassigned == 2
