"""One lead per person: the normalised email is the identity."""

from uuid import UUID

import pytest

from services.marketing.domain.identity import email_domain, lead_id_for, normalise_email

NAMESPACE = UUID("6f1b3d2e-2c1a-4d53-9a55-1eadf10e0001")


@pytest.mark.parametrize(
    "written",
    ["ana.ruiz@acme.io", "Ana.Ruiz@ACME.io", "  ana.ruiz@acme.io ", "ana.ruiz+expo2026@acme.io"],
)
def test_the_ways_one_person_writes_their_email_are_one_identity(written: str) -> None:
    assert normalise_email(written) == "ana.ruiz@acme.io"
    assert lead_id_for(written, NAMESPACE) == lead_id_for("ana.ruiz@acme.io", NAMESPACE)


def test_different_people_are_different_leads() -> None:
    assert lead_id_for("ana.ruiz@acme.io", NAMESPACE) != lead_id_for("ana.ruiz@acme.com", NAMESPACE)
    assert lead_id_for("ana.ruiz@acme.io", NAMESPACE) != lead_id_for("anaruiz@acme.io", NAMESPACE)


def test_the_lead_id_is_a_stable_uuid_of_the_deployment_namespace() -> None:
    lead_id = lead_id_for("ana.ruiz@acme.io", NAMESPACE)
    assert UUID(lead_id).version == 5
    assert lead_id == lead_id_for("ana.ruiz@acme.io", NAMESPACE)
    other_deployment = UUID("00000000-0000-4000-8000-000000000001")
    assert lead_id_for("ana.ruiz@acme.io", other_deployment) != lead_id


def test_the_domain_is_what_disqualifiers_look_at() -> None:
    assert email_domain("Ana+x@Mailinator.COM") == "mailinator.com"
