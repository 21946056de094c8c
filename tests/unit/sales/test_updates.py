"""deal.updated: what each change to an open deal announces, and under which id."""

from datetime import timedelta
from decimal import Decimal

from schemas.events import DealChange, DealStage, LostReason, Outcome
from services.sales.domain.catalog import OrderedLine, quote
from services.sales.domain.deals import (
    ContactChannel,
    Stage,
    assign,
    close,
    last_update,
    move,
    record_contact,
    record_objection,
    updated_event,
)
from tests.unit.sales.samples import CATALOG, T0, a_deal, at

SLA = timedelta(hours=24)


def test_opening_a_deal_announces_it_with_its_follow_up_due_time() -> None:
    deal = a_deal("lead-1")
    update = updated_event(None, deal, SLA)
    assert update is not None
    event, once = update
    assert once == "deal-lead-1:opened"
    assert event.changes == [DealChange.OPENED]
    assert (event.deal_id, event.lead_id, event.campaign_id) == ("deal-lead-1", "lead-1", "cmp-1")
    assert (event.stage, event.previous_stage, event.owner) == (DealStage.PROSPECTING, None, None)
    assert event.follow_up_due_at == T0 + SLA
    assert event.first_contact_at is None
    assert event.updated_at == T0


def test_an_assignment_announces_the_owner_once() -> None:
    deal = a_deal()
    assigned = assign(deal, "rep-1", at(5))
    update = updated_event(deal, assigned, SLA)
    assert update is not None
    event, once = update
    assert (event.changes, event.owner, event.updated_at, once) == (
        [DealChange.ASSIGNED],
        "rep-1",
        at(5),
        "deal-lead-1:assigned",
    )
    # Queued (no rep yet) changes nothing a subscriber follows.
    assert updated_event(deal, assign(deal, None, at(5)), SLA) is None


def test_a_first_move_is_a_stage_change_and_the_first_contact() -> None:
    deal = assign(a_deal(), "rep-1", at(1))
    moved = move(deal, Stage.QUALIFYING, at(30), by="rep-1")
    update = updated_event(deal, moved, SLA)
    assert update is not None
    event, once = update
    assert event.changes == [DealChange.STAGE_CHANGED, DealChange.FIRST_CONTACT]
    assert (event.stage, event.previous_stage) == (DealStage.QUALIFYING, DealStage.PROSPECTING)
    assert (event.first_contact_at, event.stage_entered_at, event.updated_at) == (at(30), at(30), at(30))
    assert (event.by, event.owner) == ("rep-1", "rep-1")
    assert once == "deal-lead-1:stage:2"

    assert (event.amount, event.currency) == (None, None)

    offer = quote([OrderedLine(sku="CORE", quantity=2)], CATALOG)
    later = move(moved, Stage.PRESENTING, at(90), offer)
    second = updated_event(moved, later, SLA)
    assert second is not None
    assert second[0].changes == [DealChange.STAGE_CHANGED]
    assert (second[0].amount, second[0].currency) == (Decimal("24000.00"), "EUR")
    assert second[0].first_contact_at == at(30)
    assert second[1] == "deal-lead-1:stage:3"


def test_each_visit_gets_its_own_id_even_back_and_forth() -> None:
    deal = move(a_deal(), Stage.HANDLING_OBJECTIONS, at(1))
    back = move(deal, Stage.PRESENTING, at(2))
    again = move(back, Stage.HANDLING_OBJECTIONS, at(3))
    ids = [updated_event(b, a, SLA)[1] for b, a in ((deal, back), (back, again))]  # type: ignore[index]
    assert ids == ["deal-lead-1:stage:3", "deal-lead-1:stage:4"]


def test_the_first_contact_by_a_call_or_an_objection_is_announced_then_no_more() -> None:
    deal = a_deal()
    called = record_contact(deal, ContactChannel.CALL, None, at(2000))
    update = updated_event(deal, called, SLA)
    assert update is not None
    event, once = update
    assert (event.changes, event.first_contact_at, event.updated_at, once) == (
        [DealChange.FIRST_CONTACT],
        at(2000),
        at(2000),
        "deal-lead-1:first_contact",
    )
    assert event.follow_up_due_at < at(2000)  # late: the subscriber sees a breach
    assert updated_event(called, record_contact(called, ContactChannel.EMAIL, None, at(2001)), SLA) is None
    assert updated_event(called, record_objection(called, "price", None, at(2002)), SLA) is None
    objected = record_objection(deal, "price", "discount", at(3))
    assert updated_event(deal, objected, SLA)[0].changes == [DealChange.FIRST_CONTACT]  # type: ignore[index]


def test_a_close_is_deal_closed_s_to_announce_not_deal_updated() -> None:
    deal = a_deal()
    closed, _ = close(
        deal, Outcome.LOST, lines=[], lost_reason=LostReason.NO_NEED, catalog=CATALOG, now=at(9)
    )
    assert updated_event(deal, closed, SLA) is None


def test_the_last_move_rebuilt_from_the_stored_deal_is_the_event_first_sent() -> None:
    deal = assign(a_deal(), "rep-1", at(1))
    moved = move(deal, Stage.QUALIFYING, at(30), by="rep-1")
    assert last_update(moved, SLA) == updated_event(deal, moved, SLA)
    contacted = record_contact(deal, ContactChannel.CALL, None, at(10))
    moved_later = move(contacted, Stage.PRESENTING, at(40))
    assert last_update(moved_later, SLA) == updated_event(contacted, moved_later, SLA)
    assert last_update(a_deal(), SLA) is None


def test_the_public_stages_are_sales_stages_in_the_same_order() -> None:
    assert [str(s) for s in DealStage] == [str(s) for s in Stage]
