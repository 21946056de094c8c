"""The sales process: stages forward only, terminal only by closing, every move timed."""

import pytest

from schemas.events import LostReason, Outcome
from services.runtime.errors import Conflict, Unprocessable
from services.sales.domain.catalog import OrderedLine, quote
from services.sales.domain.deals import (
    MAX_CONTACTS,
    MAX_OBJECTIONS,
    MAX_STAGE_VISITS,
    Assignment,
    ContactChannel,
    Stage,
    assign,
    close,
    deal_id_for,
    lead_id_of,
    move,
    record_contact,
    record_objection,
)
from tests.unit.sales.samples import CATALOG, T0, a_deal, at, qualified


def test_a_qualified_lead_opens_a_deal_in_prospecting_with_what_marketing_sent() -> None:
    deal = a_deal("lead-9")
    lead = qualified("lead-9")
    assert deal.deal_id == "deal-lead-9"
    assert deal.stage is Stage.PROSPECTING
    assert (deal.contact, deal.company, deal.score, deal.reasons) == (
        lead.contact,
        lead.company,
        lead.score,
        lead.reasons,
    )
    assert deal.campaign_id == "cmp-1"
    assert deal.owner is None
    assert deal.assignment is Assignment.PENDING
    assert deal.first_contact_at is None
    assert [(v.stage, v.entered_at, v.left_at) for v in deal.history] == [(Stage.PROSPECTING, T0, None)]


def test_deal_ids_embed_the_lead_id() -> None:
    assert lead_id_of(deal_id_for("abc")) == "abc"
    assert lead_id_of("order-abc") is None
    assert lead_id_of("deal-") is None


def test_moves_go_forward_and_may_skip_ahead() -> None:
    deal = move(a_deal(), Stage.QUALIFYING, at(10))
    deal = move(deal, Stage.HANDLING_OBJECTIONS, at(30))
    assert deal.stage is Stage.HANDLING_OBJECTIONS
    assert deal.stage_entered_at == at(30)


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([Stage.QUALIFYING], Stage.PROSPECTING),
        ([Stage.PRESENTING], Stage.QUALIFYING),
        ([Stage.PRESENTING], Stage.PRESENTING),
        ([Stage.CLOSING], Stage.HANDLING_OBJECTIONS),
        ([Stage.CLOSING], Stage.PRESENTING),
        ([], Stage.WON),
        ([], Stage.LOST),
    ],
)
def test_moves_back_or_into_a_terminal_stage_are_conflicts(path: list[Stage], refused: Stage) -> None:
    deal = a_deal()
    for minutes, stage in enumerate(path, start=1):
        deal = move(deal, stage, at(minutes))
    with pytest.raises(Conflict) as error:
        move(deal, refused, at(60))
    assert error.value.field == "stage"


def test_handling_objections_may_go_back_to_presenting() -> None:
    deal = move(a_deal(), Stage.HANDLING_OBJECTIONS, at(5))
    deal = move(deal, Stage.PRESENTING, at(9))
    assert deal.stage is Stage.PRESENTING
    assert [v.stage for v in deal.history] == [
        Stage.PROSPECTING,
        Stage.HANDLING_OBJECTIONS,
        Stage.PRESENTING,
    ]


def test_every_move_is_timed_so_time_in_stage_is_known() -> None:
    deal = move(a_deal(), Stage.QUALIFYING, at(10))
    deal = move(deal, Stage.PRESENTING, at(25))
    prospecting, qualifying, presenting = deal.history
    assert prospecting.seconds(at(99)) == 600
    assert qualifying.seconds(at(99)) == 900
    assert presenting.left_at is None
    assert presenting.seconds(at(30)) == 300
    assert deal.last_left == qualifying


def test_the_first_move_objection_or_contact_is_the_first_contact_and_it_stays() -> None:
    assert move(a_deal(), Stage.QUALIFYING, at(7)).first_contact_at == at(7)
    assert record_objection(a_deal(), "too dear", None, at(8)).first_contact_at == at(8)
    contacted = record_contact(a_deal(), ContactChannel.CALL, "left a voicemail", at(9))
    assert contacted.first_contact_at == at(9)
    assert move(contacted, Stage.QUALIFYING, at(50)).first_contact_at == at(9)


def test_objections_are_recorded_with_their_resolution() -> None:
    deal = record_objection(a_deal(), "We use a competitor", "Showed migration path", at(3))
    deal = record_objection(deal, "Budget frozen", None, at(4))
    assert [(o.objection, o.resolution, o.at) for o in deal.objections] == [
        ("We use a competitor", "Showed migration path", at(3)),
        ("Budget frozen", None, at(4)),
    ]


def test_a_deal_full_of_the_longest_entries_stays_far_below_kafkas_record_limit() -> None:
    # Unbounded, a deal grew past 1 MB; its table write failed and sales crash-looped (issue #9).
    deal, longest = a_deal(), "x" * 2000
    for i in range(MAX_OBJECTIONS):
        deal = record_objection(deal, longest, longest, at(i))
    for i in range(MAX_CONTACTS):
        deal = record_contact(deal, ContactChannel.CALL, longest, at(i))
    while len(deal.history) < MAX_STAGE_VISITS:
        there = Stage.PRESENTING if deal.stage is Stage.HANDLING_OBJECTIONS else Stage.HANDLING_OBJECTIONS
        deal = move(deal, there, at(len(deal.history)))
    with pytest.raises(Conflict, match="at most 50 objections") as error:
        record_objection(deal, "one more", None, at(999))
    assert error.value.field == "objection"
    with pytest.raises(Conflict, match="at most 100 contacts") as error:
        record_contact(deal, ContactChannel.EMAIL, None, at(999))
    assert error.value.field == "channel"
    with pytest.raises(Conflict, match="at most 60 stage visits") as error:
        move(deal, Stage.PRESENTING, at(999))
    assert error.value.field == "stage"
    assert len(deal.model_dump_json()) < 600_000


def test_a_won_close_is_priced_from_the_catalogue_and_makes_the_event() -> None:
    deal = assign(a_deal(), "rep-1", at(1))
    deal = move(deal, Stage.CLOSING, at(5))
    lines = [OrderedLine(sku="CORE", quantity=1), OrderedLine(sku="SEAT", quantity=5)]
    closed, event = close(deal, Outcome.WON, lines=lines, lost_reason=None, catalog=CATALOG, now=at(30))
    assert closed.stage is Stage.WON
    assert str(closed.amount) == "14400.00"
    assert closed.catalog_version == "test-1"
    assert closed.history[-2].left_at == at(30)
    assert event.deal_id == deal.deal_id
    assert event.lead_id == deal.lead_id
    assert event.campaign_id == "cmp-1"
    assert event.outcome is Outcome.WON
    assert event.lost_reason is None
    assert event.owner == "rep-1"
    assert event.customer.company == deal.company
    assert event.customer.contact == deal.contact
    assert [(line.sku, line.name, line.quantity, str(line.unit_price)) for line in event.lines] == [
        ("CORE", "Core", 1, "12000.00"),
        ("SEAT", "Seat", 5, "480.00"),
    ]
    assert str(event.amount) == "14400.00"
    assert event.currency == "EUR"
    assert event.opened_at == T0
    assert event.first_contact_at == at(5)
    assert event.closed_at == at(30)


def test_a_lost_close_needs_a_reason_and_no_lines() -> None:
    deal = a_deal()
    with pytest.raises(Unprocessable) as no_reason:
        close(deal, Outcome.LOST, lines=[], lost_reason=None, catalog=CATALOG, now=at(1))
    assert no_reason.value.field == "lost_reason"
    with pytest.raises(Unprocessable) as with_lines:
        close(
            deal,
            Outcome.LOST,
            lines=[OrderedLine(sku="CORE", quantity=1)],
            lost_reason=LostReason.TIMING,
            catalog=CATALOG,
            now=at(1),
        )
    assert with_lines.value.field == "lines"
    closed, event = close(
        deal, Outcome.LOST, lines=[], lost_reason=LostReason.NOT_A_REAL_LEAD, catalog=CATALOG, now=at(2)
    )
    assert closed.stage is Stage.LOST
    assert event.lost_reason is LostReason.NOT_A_REAL_LEAD
    assert str(event.amount) == "0.00"
    assert event.lines == []
    assert event.first_contact_at == at(2)


def test_a_won_close_needs_lines_and_no_lost_reason() -> None:
    with pytest.raises(Unprocessable) as no_lines:
        close(a_deal(), Outcome.WON, lines=[], lost_reason=None, catalog=CATALOG, now=at(1))
    assert no_lines.value.field == "lines"
    with pytest.raises(Unprocessable) as reason:
        close(
            a_deal(),
            Outcome.WON,
            lines=[OrderedLine(sku="CORE", quantity=1)],
            lost_reason=LostReason.TIMING,
            catalog=CATALOG,
            now=at(1),
        )
    assert reason.value.field == "lost_reason"


def test_a_closed_deal_takes_no_second_close_no_move_and_no_objection() -> None:
    closed, _ = close(
        a_deal(), Outcome.LOST, lines=[], lost_reason=LostReason.NO_NEED, catalog=CATALOG, now=at(1)
    )
    with pytest.raises(Conflict):
        close(closed, Outcome.LOST, lines=[], lost_reason=LostReason.NO_NEED, catalog=CATALOG, now=at(2))
    with pytest.raises(Conflict):
        move(closed, Stage.CLOSING, at(2))
    with pytest.raises(Conflict):
        record_objection(closed, "late", None, at(2))
    with pytest.raises(Conflict):
        record_contact(closed, ContactChannel.EMAIL, None, at(2))


def test_a_deal_takes_its_first_owner_only_and_none_once_closed() -> None:
    queued = assign(a_deal(), None, at(1))
    assert (queued.owner, queued.assignment) == (None, Assignment.QUEUED)
    owned = assign(queued, "rep-1", at(2))
    assert (owned.owner, owned.assignment, owned.assigned_at) == ("rep-1", Assignment.ASSIGNED, at(2))
    assert assign(owned, "rep-2", at(3)) == owned
    assert assign(owned, None, at(3)) == owned
    closed, _ = close(
        queued, Outcome.LOST, lines=[], lost_reason=LostReason.TIMING, catalog=CATALOG, now=at(4)
    )
    assert assign(closed, "rep-1", at(5)) == closed


def test_a_proposal_on_a_move_is_kept_as_the_offer() -> None:
    offer = quote([OrderedLine(sku="SEAT", quantity=10)], CATALOG)
    deal = move(a_deal(), Stage.PRESENTING, at(5), proposal=offer)
    assert deal.proposal == offer
    assert move(deal, Stage.CLOSING, at(6)).proposal == offer


def test_each_change_a_person_makes_records_who_made_it() -> None:
    deal = move(a_deal(), Stage.QUALIFYING, at(10), by="rep-anna")
    deal = record_objection(deal, "too expensive", None, at(11), by="rep-anna")
    deal = record_contact(deal, ContactChannel.CALL, "called back", at(12), by="manager-ben")
    lines = [OrderedLine(sku="CORE", quantity=1)]
    closed, event = close(
        deal, Outcome.WON, lines=lines, lost_reason=None, catalog=CATALOG, now=at(30), by="rep-anna"
    )
    assert [(v.stage, v.by) for v in closed.history] == [
        (Stage.PROSPECTING, None),  # opened by Leadflow, from marketing's event
        (Stage.QUALIFYING, "rep-anna"),
        (Stage.WON, "rep-anna"),
    ]
    assert [o.by for o in closed.objections] == ["rep-anna"]
    assert [c.by for c in closed.contacts] == ["manager-ben"]
    assert closed.closed_by == "rep-anna"
    assert event.closed_by == "rep-anna"
