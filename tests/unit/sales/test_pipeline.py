"""The pipeline: list filters and the figures the metrics report."""

from collections import Counter
from collections.abc import Hashable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from schemas.events import LostReason, Outcome
from services.sales.domain.catalog import OrderedLine, quote
from services.sales.domain.deals import ContactChannel, Deal, Stage, assign, close, move, record_contact
from services.sales.domain.follow_up import FollowUpStatus, follow_up
from services.sales.domain.pipeline import (
    AWAITING,
    PAST,
    contribution,
    due_step,
    figures,
    figures_from,
    selected,
    settled,
)
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


def test_deals_due_in_the_same_step_share_one_sum_and_a_day_holds_at_most_a_thousand() -> None:
    day = timedelta(days=1)
    deals = [a_deal(f"lead-{n}").model_copy(update={"opened_at": at(n * 0.37)}) for n in range(8_000)]
    names = {name for deal in deals for name in contribution(deal, day) if isinstance(name, tuple)}
    awaiting = {name for name in names if name[0] == AWAITING}
    assert len({deal.opened_at for deal in deals}) == 8_000
    # 8,000 deals over 49 hours, due in steps of 86.4 s: one sum per step, not per deal.
    assert len(awaiting) == pytest.approx(8_000 * 0.37 * 60 / 86.4, abs=2)
    for deal in deals[:50]:
        step = due_step(deal, day)
        assert deal.opened_at + day <= step < deal.opened_at + day + timedelta(seconds=86.4)


def test_a_breach_is_counted_once_its_step_has_passed_and_never_before_it_is_due() -> None:
    sla = timedelta(minutes=10)  # steps of one second (0.6 s rounded up)
    deal = a_deal("a").model_copy(update={"opened_at": at(0) + timedelta(milliseconds=250)})
    due = deal.opened_at + sla
    assert figures([deal], due, sla).breached == 0
    assert figures([deal], due + timedelta(milliseconds=500), sla).breached == 0  # within its step
    assert figures([deal], due + timedelta(seconds=1), sla).breached == 1
    assert figures([deal], due + timedelta(seconds=1), sla).overdue == 1


def test_settled_sums_give_the_same_figures_with_one_name_for_every_time_gone_by() -> None:
    sla = timedelta(hours=1)
    deals = [a_deal(f"lead-{n}").model_copy(update={"opened_at": at(n)}) for n in range(180)]
    deals[7] = record_contact(deals[7], ContactChannel.EMAIL, None, at(90))  # late
    deals[100] = record_contact(deals[100], ContactChannel.EMAIL, None, at(110))  # in time
    now = at(150)
    sums: Counter[Hashable] = Counter()
    for deal in deals:
        sums.update(contribution(deal, sla))
    settled_sums: Counter[Hashable] = Counter()
    for name, amount in sums.items():
        settled_sums[settled(name, now)] += amount
    assert figures_from(settled_sums, now) == figures_from(sums, now) == figures(deals, now, sla)
    assert figures_from(settled_sums, now).breached == 90  # 89 never contacted before 90 min ago, 1 late
    due_names = [name for name in settled_sums if isinstance(name, tuple) and isinstance(name[1], datetime)]
    assert (AWAITING, PAST) in settled_sums
    assert all(name[1] >= now or name[1] == PAST for name in due_names)
    # Settling again later only merges more of them: the figures still agree.
    later = at(200)
    again = Counter[Hashable]()
    for name, amount in settled_sums.items():
        again[settled(name, later)] += amount
    assert figures_from(again, later) == figures(deals, later, sla)
