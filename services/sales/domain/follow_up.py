"""The follow-up SLA: a deal must be touched within the SLA of being opened.

This is what settles "if only Sales followed up on the leads we give them". A
deal is `pending` while its time runs, `met` when its first contact came in
time, and `breached` when it came late or has not come and the time is up. The
status is a pure function of the deal, the time and the SLA, evaluated when it
is read, so no timer has to flag anything and every worker agrees.
"""

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel

from services.sales.domain.deals import Deal


class FollowUpStatus(StrEnum):
    PENDING = "pending"
    MET = "met"
    BREACHED = "breached"


class FollowUp(BaseModel):
    status: FollowUpStatus
    due_at: AwareDatetime
    first_contact_at: AwareDatetime | None
    overdue: bool

    @property
    def breached(self) -> bool:
        return self.status is FollowUpStatus.BREACHED


def follow_up(deal: Deal, now: datetime, sla: timedelta) -> FollowUp:
    """Where `deal` stands against the follow-up SLA at `now`. `overdue`: still
    waiting for its first contact after the time is up (someone should call)."""
    due = deal.opened_at + sla
    contacted = deal.first_contact_at
    if contacted is not None:
        status = FollowUpStatus.MET if contacted <= due else FollowUpStatus.BREACHED
    else:
        status = FollowUpStatus.BREACHED if now > due else FollowUpStatus.PENDING
    return FollowUp(
        status=status,
        due_at=due,
        first_contact_at=contacted,
        overdue=contacted is None and status is FollowUpStatus.BREACHED,
    )
