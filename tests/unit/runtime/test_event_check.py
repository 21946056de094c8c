"""What every consumer of an event topic refuses (services/runtime/events.py
`accepted_event`): the records the poison suite found accepted before."""

import pytest

from schemas.envelope import new_event
from schemas.events import LeadCreated
from services.runtime.events import accepted_event, event_adapter
from tests.unit.runtime.test_publisher import created

ADAPTER = event_adapter(LeadCreated)


def record(lead_id: str, *, subject: str | None = None) -> bytes:
    return new_event(created(lead_id), source="/leadflow/test", subject=subject or lead_id).to_json()


def test_a_record_keyed_by_its_lead_is_accepted() -> None:
    event = accepted_event(ADAPTER, b"lead-1", record("lead-1"))
    assert (event.subject, event.data.lead_id) == ("lead-1", "lead-1")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        # Not UTF-8: decoding with replacement made this key equal the subject.
        (b"\xfflead-1", record("lead-1", subject="\ufffdlead-1"), "record key is not the event subject"),
        (None, record("lead-1", subject=""), "record key is not the event subject"),
        (b"lead-1", record("lead-1").replace(b'"lead_id":"lead-1"', b'"lead_id":"lead-2"'), "data's lead_id"),
        (b"lead-2", record("lead-1"), "record key is not the event subject"),
    ],
    ids=["key-not-utf8", "no-key-empty-subject", "data-of-another-lead", "another-lead's-key"],
)
def test_a_record_not_keyed_by_its_lead_is_refused(key: bytes | None, value: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        accepted_event(ADAPTER, key, value)
